//! The embedded host's container streams: the simulated node's
//! ([`SimulatedStreams`]), which read pods, configMaps and secrets through
//! a client of the host API server, and so can only be made once that
//! server runs. Until then requests get 503.

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use vcluster_simnode::SimulatedStreams;
use vcluster_streams::{
    ContainerStreams, PortConnection, Process, ProcessOptions, StreamError, StreamTarget,
};

/// Streams served by the simulated node once it is [`set`](Self::set).
#[derive(Default)]
pub struct NodeStreams {
    node: OnceLock<Arc<SimulatedStreams>>,
}

impl NodeStreams {
    /// Hands over the node's streams (later calls are ignored).
    pub fn set(&self, streams: SimulatedStreams) {
        let _ = self.node.set(Arc::new(streams));
    }

    fn node(&self) -> Result<&Arc<SimulatedStreams>, StreamError> {
        self.node.get().ok_or_else(|| StreamError {
            code: 503,
            reason: "ServiceUnavailable".into(),
            message: "the simulated node is not running yet".into(),
        })
    }
}

#[async_trait]
impl ContainerStreams for NodeStreams {
    async fn exec(&self, t: &StreamTarget, o: &ProcessOptions) -> Result<Process, StreamError> {
        self.node()?.exec(t, o).await
    }

    async fn attach(&self, t: &StreamTarget, o: &ProcessOptions) -> Result<Process, StreamError> {
        self.node()?.attach(t, o).await
    }

    async fn port_forward(
        &self,
        t: &StreamTarget,
        port: u16,
    ) -> Result<PortConnection, StreamError> {
        self.node()?.port_forward(t, port).await
    }
}
