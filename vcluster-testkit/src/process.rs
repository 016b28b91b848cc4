//! Child processes of a test harness: their logs, readiness and an end that
//! never leaves them behind.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Asks the kernel to kill the child (SIGKILL) when the thread that spawns
/// it ends, which for a harness thread that lives as long as the test
/// process means: when the test process ends, however it ends. This is
/// what stops a harness kept in a `static` (never dropped).
pub fn die_with_spawning_thread(command: &mut Command) {
    // SAFETY: the closure runs in the forked child before exec and only
    // makes one async-signal-safe system call.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// A running child whose output goes to a log file; killed (SIGKILL) and
/// reaped on drop.
pub struct Process {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Process {
    /// Spawns `command` with stdout and stderr appended to `log`, killed
    /// when the calling thread ends (see [`die_with_spawning_thread`]).
    pub fn spawn(name: &str, mut command: Command, log: &Path) -> Result<Self, String> {
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| format!("cannot open {}: {e}", log.display()))?;
        let err = out
            .try_clone()
            .map_err(|e| format!("cannot share {}: {e}", log.display()))?;
        command
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        die_with_spawning_thread(&mut command);
        let child = command
            .spawn()
            .map_err(|e| format!("cannot run {name} ({:?}): {e}", command.get_program()))?;
        Ok(Self {
            name: name.to_owned(),
            child,
            log: log.to_owned(),
        })
    }

    /// `Err` with the end of its log if the process has exited.
    pub fn check_running(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Err(format!(
                "{} exited with {status}; the end of its log ({}):\n{}",
                self.name,
                self.log.display(),
                tail(&self.log)
            )),
            _ => Ok(()),
        }
    }

    /// The end of its log, for failure messages.
    pub fn log_tail(&self) -> String {
        tail(&self.log)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // Already gone is fine: the point is that it is not running.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The end of a log file, for failure messages.
pub(crate) fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let start = text.len().saturating_sub(4_000);
    let start = (start..text.len())
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(text.len());
    text[start..].to_owned()
}
