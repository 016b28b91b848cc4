//! Serves an in-memory API server on plain HTTP, for trying it with kubectl:
//!
//! ```sh
//! cargo run -p vcluster-apiserver --example serve -- 127.0.0.1:8001
//! kubectl --server http://127.0.0.1:8001 get namespaces
//! ```

use std::sync::Arc;

use vcluster_apiserver::storage::MemoryStorage;
use vcluster_apiserver::{ApiServer, ApiServerConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8001".to_owned())
        .parse()?;
    let server = ApiServer::start(ApiServerConfig::new(Arc::new(MemoryStorage::new()))).await?;
    let bound = server.spawn(addr, None).await?;
    println!("serving on http://{bound}; try: kubectl --server http://{bound} get namespaces");
    tokio::signal::ctrl_c().await?;
    server.shutdown();
    Ok(())
}
