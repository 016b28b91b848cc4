//! A minimal, storage-agnostic Kubernetes-compatible API server.
#![warn(missing_docs)]

pub mod storage;
