//! The machine-readable result lines: one per measurement,
//! `BENCH name=<bench> key=value key=value ...`, values without spaces, so
//! `grep ^BENCH | tr ' ' '\n'` or a one-line awk reads them.

use std::fmt::{Display, Write as _};
use std::time::Duration;

use super::stats::{LatencySummary, Spread};

/// One result line under construction.
#[must_use = "a report line does nothing until printed"]
pub struct Line {
    text: String,
}

impl Line {
    /// A line of bench `name`.
    pub fn new(name: &str) -> Self {
        let mut line = Self {
            text: String::from("BENCH"),
        };
        line.push("name", name);
        line
    }

    fn push(&mut self, key: &str, value: impl Display) {
        let value = value.to_string();
        assert!(
            !value.is_empty() && !value.contains(char::is_whitespace),
            "report value {key}={value:?} must be one word"
        );
        let _ = write!(self.text, " {key}={value}");
    }

    /// A label or count.
    pub fn tag(mut self, key: &str, value: impl Display) -> Self {
        self.push(key, value);
        self
    }

    /// A number with `decimals` places.
    pub fn num(mut self, key: &str, value: f64, decimals: usize) -> Self {
        self.push(key, format!("{value:.decimals$}"));
        self
    }

    /// A duration in milliseconds.
    pub fn millis(mut self, key: &str, value: Duration) -> Self {
        self.push(key, format!("{:.3}", value.as_secs_f64() * 1e3));
        self
    }

    /// The median as `key`, plus `key_min`, `key_max` and `spread_pct`.
    pub fn spread(mut self, key: &str, spread: Spread, decimals: usize) -> Self {
        self.push(key, format!("{:.decimals$}", spread.median));
        self.push(&format!("{key}_min"), format!("{:.decimals$}", spread.min));
        self.push(&format!("{key}_max"), format!("{:.decimals$}", spread.max));
        self.push("spread_pct", format!("{:.1}", spread.spread_pct()));
        self.push("samples", spread.samples);
        self
    }

    /// `p50_ms`, `p99_ms` and `max_ms` (with `prefix_` before each when
    /// `prefix` is not empty).
    pub fn latencies(self, prefix: &str, summary: LatencySummary) -> Self {
        let key = |name: &str| {
            if prefix.is_empty() {
                name.to_owned()
            } else {
                format!("{prefix}_{name}")
            }
        };
        self.millis(&key("p50_ms"), summary.p50)
            .millis(&key("p99_ms"), summary.p99)
            .millis(&key("max_ms"), summary.max)
    }

    /// Prints the line to stdout.
    pub fn print(self) {
        println!("{}", self.text);
    }
}

/// A human-readable progress note on stderr (never parsed).
pub fn note(message: impl Display) {
    eprintln!("# {message}");
}
