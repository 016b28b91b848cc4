//! The `vcluster` command line, as a library: each subcommand is a
//! function over typed arguments, so tests and embedders call what the
//! binary calls.
//!
//! - `create` deploys a control plane into a host namespace
//!   ([`manifests`] decides the objects, [`host`] applies them);
//! - `connect` makes a kubeconfig context reaching it (port-forward or
//!   address), current in the user's kubeconfig ([`kubeconfig`]) until
//!   `disconnect`;
//! - `list`, `pause`, `resume`, `delete` manage it;
//! - `run` is what the control plane pod executes: the facade's
//!   [`vcluster::demo::start`] with the host reached in-cluster.
//!
//! ```
//! use vcluster_cli::manifests::{ControlPlane, HostObject};
//!
//! let plane = vcluster_cli::config::control_plane("my-vc", "team-a", None, None)?;
//! let objects = plane.objects();
//! assert!(objects.iter().any(|o| o.describe() == "statefulset/my-vc"));
//! assert!(matches!(objects[0], HostObject::ServiceAccount(_)));
//! # let _: &ControlPlane = &plane;
//! # Ok::<(), vcluster_cli::error::CliError>(())
//! ```
#![warn(missing_docs)]

use std::time::Duration;

pub mod commands;
pub mod config;
pub mod error;
pub mod host;
pub mod kubeconfig;
pub mod manifests;
pub mod progress;

/// Parses `90s`, `5m`, `1h` or a plain number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let value: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (use 90s, 5m or 1h)"))?;
    let seconds = match unit {
        "s" => value,
        "m" => value * 60,
        "h" => value * 3600,
        _ => return Err(format!("{text:?} is not a duration (use 90s, 5m or 1h)")),
    };
    Ok(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_kubectl_writes_them() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert!(parse_duration("5 minutes").is_err());
        assert!(parse_duration("m").is_err());
    }
}
