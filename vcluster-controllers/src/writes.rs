//! How the controllers identify their writes: every create, update and
//! patch names the field manager [`FIELD_MANAGER`], as kube-controller-manager
//! names its own, so `managedFields` and apply conflicts say which fields a
//! controller set.

use kube::api::{PatchParams, PostParams};

/// The field manager of every write the controllers make.
pub const FIELD_MANAGER: &str = "vcluster-controllers";

/// Parameters of a create or update by a controller.
pub fn post_params() -> PostParams {
    PostParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PostParams::default()
    }
}

/// Parameters of a (non-apply) patch by a controller.
pub fn patch_params() -> PatchParams {
    PatchParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PatchParams::default()
    }
}
