//! Write parameters that name the writer. Every component of a virtual
//! cluster that writes objects (the syncer, the controllers) sets its own
//! field manager, so `managedFields` on both sides say who set which
//! fields and server-side apply conflicts name the component, instead of
//! an anonymous `unknown` manager.

use kube::api::{PatchParams, PostParams};

/// Parameters of a create or update by `field_manager`.
pub fn post_params(field_manager: &str) -> PostParams {
    PostParams {
        field_manager: Some(field_manager.to_owned()),
        ..PostParams::default()
    }
}

/// Parameters of a (non-apply) patch by `field_manager`.
pub fn patch_params(field_manager: &str) -> PatchParams {
    PatchParams {
        field_manager: Some(field_manager.to_owned()),
        ..PatchParams::default()
    }
}
