//! Progress lines for long steps, on stderr (stdout stays for what a
//! command prints on purpose, such as `connect --print`).

use std::io::Write as _;

/// Where progress goes.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    quiet: bool,
}

impl Progress {
    /// Progress on stderr.
    pub fn stderr() -> Self {
        Self { quiet: false }
    }

    /// No progress at all.
    pub fn quiet() -> Self {
        Self { quiet: true }
    }

    /// One step done or under way.
    pub fn step(&self, message: &str) {
        self.line("  ", message);
    }

    /// The command's result.
    pub fn done(&self, message: &str) {
        self.line("", message);
    }

    fn line(&self, prefix: &str, message: &str) {
        if !self.quiet {
            let _ = writeln!(std::io::stderr(), "{prefix}{message}");
        }
    }
}
