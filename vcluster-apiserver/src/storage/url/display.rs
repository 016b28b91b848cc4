//! Printing a configuration back as its canonical URL.

use std::fmt;

use super::{StorageConfig, MEMORY_HISTORY};
use crate::storage::sqlite::{SqliteOptions, Synchronous};

impl fmt::Display for StorageConfig {
    /// The canonical URL: parsing it gives the same configuration back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageConfig::Memory { history } => {
                write!(f, "memory://")?;
                if *history != MEMORY_HISTORY {
                    write!(f, "?history={history}")?;
                }
                Ok(())
            }
            StorageConfig::Sqlite { path, options } => {
                write!(f, "sqlite://{}", encode(&path.to_string_lossy()))?;
                let mut query = Vec::new();
                if options.history != SqliteOptions::default().history {
                    query.push(format!("history={}", options.history));
                }
                if options.synchronous == Synchronous::Normal {
                    query.push("sync=normal".to_owned());
                }
                if !query.is_empty() {
                    write!(f, "?{}", query.join("&"))?;
                }
                Ok(())
            }
            StorageConfig::Etcd {
                endpoints,
                prefix,
                tls,
            } => {
                let hosts: Vec<&str> = endpoints
                    .iter()
                    .map(|e| {
                        e.strip_prefix("http://")
                            .or_else(|| e.strip_prefix("https://"))
                            .unwrap_or(e)
                    })
                    .collect();
                write!(f, "etcd://{}", hosts.join(","))?;
                let mut query = Vec::new();
                if !prefix.is_empty() {
                    query.push(format!("prefix={}", encode(prefix)));
                }
                if let Some(tls) = tls {
                    query.push(format!("ca={}", encode(&tls.ca.to_string_lossy())));
                    if let Some((cert, key)) = &tls.client {
                        query.push(format!("cert={}", encode(&cert.to_string_lossy())));
                        query.push(format!("key={}", encode(&key.to_string_lossy())));
                    }
                }
                if !query.is_empty() {
                    write!(f, "?{}", query.join("&"))?;
                }
                Ok(())
            }
        }
    }
}

/// Escapes what would change the meaning of a URL part.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '%' | '?' | '&' | '#' | ',' | '=' | ' ' => out.push_str(&format!("%{:02X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}
