//! Where audit events go: an [`AuditSink`]. [`FileSink`] writes JSON lines
//! with size-based rotation (kube-apiserver's `--audit-log-path`,
//! `--audit-log-maxsize`, `--audit-log-maxbackup`); [`MemorySink`] keeps
//! them for tests and embedding code.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::event::Event;

/// A destination for audit events. `write` is called on the request's
/// task, so it must not block for long (a file append is fine).
pub trait AuditSink: Send + Sync {
    /// Records one event; failures are the sink's to report (an audit
    /// failure never fails the request, as upstream's blocking-free log
    /// backend).
    fn write(&self, event: &Event);
}

/// Why a file sink could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("opening the audit log {path}: {source}")]
pub struct SinkError {
    /// The file.
    pub path: String,
    /// The I/O error.
    #[source]
    pub source: io::Error,
}

/// Size-based rotation settings of a [`FileSink`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rotation {
    /// Rotate when the file would grow past this many bytes (0: never).
    pub max_bytes: u64,
    /// Rotated files kept (0: all, as upstream).
    pub max_backups: usize,
}

struct Open {
    file: File,
    size: u64,
}

/// JSON lines in a file created `0600` (the log holds who did what, and at
/// `Request` levels object contents), rotated by size.
pub struct FileSink {
    path: PathBuf,
    rotation: Rotation,
    open: Mutex<Open>,
}

impl std::fmt::Debug for FileSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileSink")
            .field("path", &self.path)
            .field("rotation", &self.rotation)
            .finish_non_exhaustive()
    }
}

fn open_append(path: &Path) -> io::Result<Open> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        if !parent.exists() {
            crate::state_files::create_private_dir(parent)?;
        }
    }
    let file = crate::state_files::private_open_options()
        .create(true)
        .append(true)
        .open(path)?;
    let size = file.metadata()?.len();
    Ok(Open { file, size })
}

impl FileSink {
    /// Opens (appends to) `path`, creating it and missing parent
    /// directories owner-only.
    pub fn open(path: &Path, rotation: Rotation) -> Result<Self, SinkError> {
        let open = open_append(path).map_err(|source| SinkError {
            path: path.display().to_string(),
            source,
        })?;
        Ok(Self {
            path: path.to_owned(),
            rotation,
            open: Mutex::new(open),
        })
    }

    /// The rotated files of this log, oldest first (lumberjack's names:
    /// `audit-2026-12-06T15-52-01.123.log` for `audit.log`).
    pub fn backups(&self) -> io::Result<Vec<PathBuf>> {
        let (dir, stem, ext) = self.parts();
        let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                    n.len() > stem.len() + ext.len() + 1
                        && n.starts_with(&format!("{stem}-"))
                        && n.ends_with(&ext)
                })
            })
            .collect();
        found.sort();
        Ok(found)
    }

    fn parts(&self) -> (PathBuf, String, String) {
        let dir = match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        let stem = self
            .path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let ext = self
            .path
            .extension()
            .map(|e| format!(".{}", e.to_string_lossy()))
            .unwrap_or_default();
        (dir, stem, ext)
    }

    fn rotate(&self, open: &mut Open) -> io::Result<()> {
        let (dir, stem, ext) = self.parts();
        let stamp = jiff::Timestamp::now().strftime("%Y-%m-%dT%H-%M-%S%.3f");
        let mut target = dir.join(format!("{stem}-{stamp}{ext}"));
        let mut n = 1;
        while target.exists() {
            target = dir.join(format!("{stem}-{stamp}.{n:03}{ext}"));
            n += 1;
        }
        open.file.flush()?;
        std::fs::rename(&self.path, &target)?;
        *open = open_append(&self.path)?;
        if self.rotation.max_backups > 0 {
            let backups = self.backups()?;
            let excess = backups.len().saturating_sub(self.rotation.max_backups);
            for old in &backups[..excess] {
                std::fs::remove_file(old)?;
            }
        }
        Ok(())
    }

    fn append(&self, line: &[u8]) -> io::Result<()> {
        let mut open = self
            .open
            .lock()
            .map_err(|_| io::Error::other("the audit log lock is poisoned"))?;
        let len = line.len() as u64;
        if self.rotation.max_bytes > 0 && open.size > 0 && open.size + len > self.rotation.max_bytes
        {
            self.rotate(&mut open)?;
        }
        open.file.write_all(line)?;
        open.size += len;
        Ok(())
    }
}

impl AuditSink for FileSink {
    fn write(&self, event: &Event) {
        let mut line = match serde_json::to_vec(event) {
            Ok(line) => line,
            Err(err) => {
                tracing::error!(error = %err, "an audit event could not be serialized");
                return;
            }
        };
        line.push(b'\n');
        if let Err(err) = self.append(&line) {
            tracing::error!(path = %self.path.display(), error = %err, "writing the audit log failed");
        }
    }
}

/// Events kept in memory, in order (tests, embedders that ship them
/// elsewhere).
#[derive(Clone, Debug, Default)]
pub struct MemorySink {
    events: Arc<Mutex<Vec<Event>>>,
}

impl MemorySink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// The events so far.
    pub fn events(&self) -> Vec<Event> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

impl AuditSink for MemorySink {
    fn write(&self, event: &Event) {
        if let Ok(mut events) = self.events.lock() {
            events.push(event.clone());
        }
    }
}
