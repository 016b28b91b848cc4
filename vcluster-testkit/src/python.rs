//! The official Python `kubernetes` client, for tests that drive a server
//! the way Python users do. The interpreter comes from `VCLUSTER_E2E_PYTHON`
//! (`tools/test` points it at a virtualenv with the package).

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

/// The variable naming the interpreter.
pub const PYTHON_ENV: &str = "VCLUSTER_E2E_PYTHON";

/// The interpreter; panics saying how to get one when it is not set up (a
/// missing client is a failure, not a skip).
pub fn interpreter() -> PathBuf {
    let Some(path) = std::env::var_os(PYTHON_ENV) else {
        panic!(
            "{PYTHON_ENV} is not set. This test runs the official Python `kubernetes` client; \
             point {PYTHON_ENV} at an interpreter that has it, e.g.\n  python3 -m venv \
             /tmp/vcluster-ci-venv && /tmp/vcluster-ci-venv/bin/pip install kubernetes\n  \
             export {PYTHON_ENV}=/tmp/vcluster-ci-venv/bin/python\n(`bash tools/test` does \
             exactly this)"
        );
    };
    let path = PathBuf::from(path);
    let executable = std::fs::metadata(&path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false);
    assert!(
        executable,
        "{PYTHON_ENV}={} is not an executable file",
        path.display()
    );
    path
}
