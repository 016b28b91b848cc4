//! How the syncer identifies its writes: every create, update and patch it
//! sends names the field manager [`FIELD_MANAGER`], so `managedFields` on
//! both sides say which fields the syncer set (and server-side apply
//! conflicts name it), instead of an anonymous `unknown` manager.

use kube::api::{PatchParams, PostParams};

/// The field manager of every write the syncer makes.
pub const FIELD_MANAGER: &str = "vcluster-syncer";

/// Parameters of a create or update by the syncer.
pub fn post_params() -> PostParams {
    PostParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PostParams::default()
    }
}

/// Parameters of a (non-apply) patch by the syncer.
pub fn patch_params() -> PatchParams {
    PatchParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PatchParams::default()
    }
}
