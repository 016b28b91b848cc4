//! What a request asks for, read without serving it: the resource or
//! non-resource path ([`path`]), the query parameters ([`query`]) and the
//! formats of its body and answer ([`negotiate`], with objects written
//! in upstream's key order by [`wire_order`]).
//!
//! Authorization and the HTTP handlers both read requests this way, so
//! what is authorized is exactly what is served, and neither depends on
//! the other (upstream keeps its `RequestInfo` resolver apart the same
//! way).

pub mod duplicates;
pub mod negotiate;
pub mod path;
pub mod query;
pub mod wire_order;

pub use query::{FieldValidation, Query};
