//! Who writes: every component of a virtual cluster that writes objects
//! (the syncer, the controllers) names itself as the field manager of each
//! create, update and patch, so `managedFields` on both sides say who set
//! which fields and server-side apply conflicts name the component instead
//! of an anonymous `unknown` manager.

use kube_core::params::{PatchParams, PostParams};

/// A writer's field manager name, and the request parameters that carry it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FieldManager(&'static str);

impl FieldManager {
    /// The syncer (host copies, and what flows back to the virtual side).
    pub const SYNCER: FieldManager = FieldManager("vcluster-syncer");
    /// The controllers of the virtual cluster, as kube-controller-manager
    /// names its own.
    pub const CONTROLLERS: FieldManager = FieldManager("vcluster-controllers");

    /// The name as it appears in `managedFields[].manager`.
    pub const fn name(self) -> &'static str {
        self.0
    }

    /// Parameters of a create or update by this writer.
    pub fn post_params(self) -> PostParams {
        PostParams {
            field_manager: Some(self.0.to_owned()),
            ..PostParams::default()
        }
    }

    /// Parameters of a (non-apply) patch by this writer.
    pub fn patch_params(self) -> PatchParams {
        PatchParams {
            field_manager: Some(self.0.to_owned()),
            ..PatchParams::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_write_names_its_writer() {
        let syncer = FieldManager::SYNCER;
        assert_eq!(
            syncer.post_params().field_manager.as_deref(),
            Some("vcluster-syncer")
        );
        assert_eq!(
            syncer.patch_params().field_manager.as_deref(),
            Some("vcluster-syncer")
        );
        assert_eq!(FieldManager::CONTROLLERS.name(), "vcluster-controllers");
        assert!(!syncer.patch_params().force, "a merge patch never forces");
    }
}
