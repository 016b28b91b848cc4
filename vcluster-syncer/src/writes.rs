//! The syncer's field manager: every create, update and patch it sends
//! names [`FIELD_MANAGER`] (see [`vcluster_core::writes`]).

use kube::api::{PatchParams, PostParams};

/// The field manager of every write the syncer makes.
pub const FIELD_MANAGER: &str = "vcluster-syncer";

/// Parameters of a create or update by the syncer.
pub fn post_params() -> PostParams {
    vcluster_core::writes::post_params(FIELD_MANAGER)
}

/// Parameters of a (non-apply) patch by the syncer.
pub fn patch_params() -> PatchParams {
    vcluster_core::writes::patch_params(FIELD_MANAGER)
}
