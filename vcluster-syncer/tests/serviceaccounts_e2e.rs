//! End to end: with the optional service account syncer, host pods run
//! under the host copy of their account, which mounts no host token.
//! Every wait has a deadline.

mod common;

use common::{eventually, object, Environment, HostKind};
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use kube::api::PostParams;
use serde_json::json;

on_both_hosts!(pods_run_under_the_translated_account_once_it_exists,);

async fn pods_run_under_the_translated_account_once_it_exists(host: HostKind) {
    let env = Environment::start_with(host, "sa1", |c| c.syncers.service_accounts = true).await;
    let vaccounts = env.virtual_cluster.api::<ServiceAccount>("default");
    let haccounts = env.host.api::<ServiceAccount>(&env.host_namespace);
    let vpods = env.virtual_cluster.api::<Pod>("default");
    let hpods = env.host.api::<Pod>(&env.host_namespace);

    // The pod first: it waits for its account on the host.
    vpods
        .create(
            &PostParams::default(),
            &object(json!({
                "metadata": {"name": "build"},
                "spec": {"serviceAccountName": "builder", "containers": [{"name": "c", "image": "busybox"}]},
            })),
        )
        .await
        .expect("pod");
    vaccounts
        .create(
            &PostParams::default(),
            &object(json!({
                "metadata": {"name": "builder", "labels": {"team": "ci"}},
                "automountServiceAccountToken": true,
                "secrets": [{"name": "builder-token"}],
            })),
        )
        .await
        .expect("account");

    let account_name = env.host_name("default", "builder");
    let host_pod = eventually("the host pod", || async {
        hpods
            .get_opt(&env.host_name("default", "build"))
            .await
            .ok()
            .flatten()
    })
    .await;
    let account = haccounts
        .get(&account_name)
        .await
        .expect("the account was on the host before the pod");
    assert_eq!(account.automount_service_account_token, Some(false));
    assert_eq!(account.secrets, None);
    assert_eq!(account.metadata.labels.expect("labels")["team"], "ci");
    assert_eq!(
        host_pod.spec.expect("spec").service_account_name.as_deref(),
        Some(account_name.as_str())
    );
}
