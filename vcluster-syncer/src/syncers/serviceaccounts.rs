//! ServiceAccounts (optional): a host copy per virtual account, so that
//! host pods can run under an identity of their own (for host-side
//! policies such as IAM roles for service accounts or pod security
//! bindings), instead of all sharing the host namespace's default account.
//!
//! The copy has `automountServiceAccountToken: false` and neither
//! `secrets` nor `imagePullSecrets`: a host token would give tenant pods
//! access to the *host* API server, and the pods talk to the virtual one.
//! Labels and annotations follow (engine); nothing else flows.
//!
//! When this syncer runs, pods run under the translated account
//! ([`crate::syncers::pods::PodEnvironment::translate_service_accounts`])
//! and wait for its host copy
//! ([`crate::syncers::pods::WaitFor::service_account`]).

use async_trait::async_trait;
use k8s_openapi::api::core::v1::ServiceAccount;
use serde_json::json;
use vcluster_core::{Translator, TranslatorExt};

use super::create_on_host;
use crate::error::SyncError;
use crate::memory::Memory;
use crate::syncer::{Action, SyncContext, Syncer, VirtualOnly};

const KIND: &str = "serviceaccounts";

/// The service account syncer.
#[derive(Default)]
pub struct ServiceAccountSyncer;

impl ServiceAccountSyncer {
    /// A service account syncer.
    pub fn new() -> Self {
        Self
    }
}

/// The host copy of a virtual service account.
pub(crate) fn host_account(
    translator: &dyn Translator,
    account: &ServiceAccount,
) -> vcluster_core::Result<ServiceAccount> {
    let mut host = translator.host_object(account)?;
    host.automount_service_account_token = Some(false);
    host.secrets = None;
    host.image_pull_secrets = None;
    Ok(host)
}

#[async_trait]
impl Syncer for ServiceAccountSyncer {
    type Object = ServiceAccount;
    type DynamicType = ();

    fn name(&self) -> &'static str {
        KIND
    }

    async fn virtual_only(
        &self,
        ctx: &SyncContext,
        account: &ServiceAccount,
        _memory: Option<&Memory>,
    ) -> Result<VirtualOnly<ServiceAccount>, SyncError> {
        create_on_host(KIND, ctx, account, host_account)
    }

    async fn both(
        &self,
        _ctx: &SyncContext,
        _virtual_account: &ServiceAccount,
        host: &ServiceAccount,
        _memory: Option<&Memory>,
    ) -> Result<Vec<Action>, SyncError> {
        // Someone turned token mounting back on: the copy must not mount.
        if host.automount_service_account_token != Some(false) {
            return Ok(vec![Action::PatchHost(
                json!({"automountServiceAccountToken": false}),
            )]);
        }
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vcluster_core::SingleNamespaceTranslator;

    #[test]
    fn the_host_account_mounts_no_token_and_lists_no_secrets() {
        let t = SingleNamespaceTranslator::new("vc", "host-ns").expect("translator");
        let account: ServiceAccount = serde_json::from_value(json!({
            "metadata": {"name": "builder", "namespace": "ci"},
            "automountServiceAccountToken": true,
            "secrets": [{"name": "builder-token"}],
            "imagePullSecrets": [{"name": "registry"}],
        }))
        .expect("account");
        let host = host_account(&t, &account).expect("host");
        assert_eq!(host.automount_service_account_token, Some(false));
        assert_eq!(host.secrets, None);
        assert_eq!(host.image_pull_secrets, None);
        assert_eq!(host.metadata.name.as_deref(), Some("builder-x-ci-x-vc"));
    }
}
