//! The simulated node (`vcluster-simnode`) on any cluster a test starts:
//! the one kubelet stand-in of scenarios that need pods bound, run and
//! finished on our own API server (the real host runs one already).

use tokio_util::sync::CancellationToken;
use vcluster_simnode::{SimulatedNode, SimulatedNodeConfig};

/// A simulated node running in the background; stopped when dropped.
pub struct RunningNode {
    /// The node's name (pods it runs are bound to it).
    pub name: String,
    cancel: CancellationToken,
}

impl RunningNode {
    /// Registers node `name` on the cluster behind `client` and runs it:
    /// it binds pods meant for the default scheduler, reports them Running
    /// and confirms graceful deletions, as a kubelet would.
    pub async fn start(client: kube::Client, name: &str) -> Self {
        let config = SimulatedNodeConfig {
            name: name.to_owned(),
            ..SimulatedNodeConfig::default()
        };
        let node = SimulatedNode::register(client, config)
            .await
            .unwrap_or_else(|e| panic!("the simulated node {name} did not register: {e}"));
        let cancel = CancellationToken::new();
        tokio::spawn(node.run(cancel.clone()));
        Self {
            name: name.to_owned(),
            cancel,
        }
    }
}

impl Drop for RunningNode {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}
