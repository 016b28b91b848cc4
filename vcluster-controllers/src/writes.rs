//! The controllers' field manager: every create, update and patch names
//! [`FIELD_MANAGER`], as kube-controller-manager names its own (see
//! [`vcluster_core::writes`]).

use kube::api::{PatchParams, PostParams};

/// The field manager of every write the controllers make.
pub const FIELD_MANAGER: &str = "vcluster-controllers";

/// Parameters of a create or update by a controller.
pub fn post_params() -> PostParams {
    vcluster_core::writes::post_params(FIELD_MANAGER)
}

/// Parameters of a (non-apply) patch by a controller.
pub fn patch_params() -> PatchParams {
    vcluster_core::writes::patch_params(FIELD_MANAGER)
}
