//! Opening a store file: the options, the lock next to the file, the
//! pragmas every connection gets, and the checks that refuse a file we
//! would misread.

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension};

use super::schema::{create_schema, load_revisions, APPLICATION_ID, SCHEMA_VERSION};
use crate::storage::Revision;

/// How many revisions the store keeps for watches and old-revision reads,
/// unless configured otherwise (the same window as the memory backend).
pub const DEFAULT_HISTORY: u64 = 10_000;

/// How long a connection waits for a lock (only checkpoints and recovery
/// take one in WAL mode) before it reports `SQLITE_BUSY`.
pub(super) const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// How hard each commit is pushed to disk (SQLite's `PRAGMA synchronous`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Synchronous {
    /// `fsync` on every commit: acknowledged writes survive a power loss.
    #[default]
    Full,
    /// `fsync` only at checkpoints: acknowledged writes survive a crash of
    /// the process, not of the machine. Faster on slow disks.
    Normal,
}

impl Synchronous {
    /// The value of `PRAGMA synchronous` for this mode.
    fn pragma(self) -> &'static str {
        match self {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        }
    }
}

/// How a [`SqliteStorage`](super::SqliteStorage) keeps its history and syncs its commits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SqliteOptions {
    /// Revisions kept for watches and old-revision reads (at least one);
    /// older history is compacted automatically.
    pub history: u64,
    /// How commits are synced to disk.
    pub synchronous: Synchronous,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            history: DEFAULT_HISTORY,
            synchronous: Synchronous::Full,
        }
    }
}

/// Why a SQLite file could not be opened as a store.
#[derive(Debug, thiserror::Error)]
pub enum SqliteOpenError {
    /// The directory that should hold the file could not be created.
    #[error("cannot create directory {path}: {source}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The lock file next to the database could not be created or locked.
    #[error("cannot lock {path}: {source}")]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// Another store (in this or another process) has the file open.
    #[error("{path} is already in use by another vcluster storage (lock file {lock} is held)")]
    InUse {
        /// The database file.
        path: PathBuf,
        /// The lock file that is held.
        lock: PathBuf,
    },
    /// The file exists but is not a SQLite database (or is corrupt).
    #[error("{path} is not a SQLite database (or it is corrupt or encrypted)")]
    NotADatabase {
        /// The database file.
        path: PathBuf,
    },
    /// The file is a SQLite database written by another application.
    #[error(
        "{path} is a SQLite database of another application (application_id {application_id:#x}, \
         {tables} tables); refusing to touch it"
    )]
    ForeignDatabase {
        /// The database file.
        path: PathBuf,
        /// The file's `PRAGMA application_id`.
        application_id: i32,
        /// How many tables it holds.
        tables: i64,
    },
    /// The file was written by a build with another layout.
    #[error(
        "{path} has storage schema version {found}, but this build only reads version {supported}"
    )]
    IncompatibleSchema {
        /// The database file.
        path: PathBuf,
        /// The version stored in the file.
        found: i64,
        /// The version this build understands.
        supported: i64,
    },
    /// The file system refused write-ahead logging (e.g. some network file
    /// systems); without it readers would block the writer.
    #[error("{path} cannot use write-ahead logging (journal mode stayed {mode:?})")]
    NoWal {
        /// The database file.
        path: PathBuf,
        /// The journal mode SQLite kept.
        mode: String,
    },
    /// SQLite failed while opening or preparing the file.
    #[error("cannot open {path} while {step}: {source}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// What the opener was doing.
        step: &'static str,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The writer thread could not be started.
    #[error("cannot start the SQLite writer thread: {0}")]
    Thread(#[source] std::io::Error),
    /// The blocking task that opens the file panicked or was cancelled.
    #[error("opening {path} was interrupted: {message}")]
    Interrupted {
        /// The database file.
        path: PathBuf,
        /// What the runtime reported.
        message: String,
    },
}

/// A validated store file, ready for the writer thread and the readers.
pub(super) struct OpenedFile {
    /// The exclusive lock on `<file>.lock`; held as long as the store lives.
    pub(super) lock: File,
    /// The only read-write connection, for the writer thread.
    pub(super) writer_conn: Connection,
    /// A read-only connection opened up front, so a file readers cannot open
    /// fails here and not on the first read.
    pub(super) first_reader: Connection,
    /// The highest revision ever handed out.
    pub(super) revision: Revision,
    /// The compaction bound.
    pub(super) compacted: Revision,
}

/// Locks, opens and checks the file at `path` (creating it and its parent
/// directories when missing). Blocking: run it off the async runtime.
pub(super) fn open_file(
    path: &Path,
    options: SqliteOptions,
) -> Result<OpenedFile, SqliteOpenError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        crate::state_files::create_private_dir(parent).map_err(|source| {
            SqliteOpenError::CreateDir {
                path: parent.to_path_buf(),
                source,
            }
        })?;
    }
    let lock = lock_file(path)?;
    // Owner-only from the first byte: it holds every object, Secrets too.
    // SQLite gives the `-wal` and `-shm` files the database file's mode.
    crate::state_files::ensure_private_file(path).map_err(|source| SqliteOpenError::Lock {
        path: path.to_path_buf(),
        source,
    })?;
    let step =
        |step: &'static str| move |source: rusqlite::Error| classify_open_error(path, step, source);

    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(step("opening the file"))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(step("setting the busy timeout"))?;
    // The first statement reads the header: a non-database fails here.
    let application_id: i32 = conn
        .query_row("PRAGMA application_id", [], |row| row.get(0))
        .map_err(step("reading the application id"))?;
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
            [],
            |row| row.get(0),
        )
        .map_err(step("listing tables"))?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(step("enabling write-ahead logging"))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(SqliteOpenError::NoWal {
            path: path.to_path_buf(),
            mode,
        });
    }
    conn.pragma_update(None, "synchronous", options.synchronous.pragma())
        .map_err(step("setting the sync mode"))?;

    match (application_id, tables) {
        (0, 0) => create_schema(&conn).map_err(step("creating the schema"))?,
        (APPLICATION_ID, _) => {}
        (application_id, tables) => {
            return Err(SqliteOpenError::ForeignDatabase {
                path: path.to_path_buf(),
                application_id,
                tables,
            })
        }
    }
    let found: Option<i64> = conn
        .query_row(
            "SELECT value FROM meta WHERE name = 'schema_version'",
            [],
            |row| row.get(0),
        )
        .optional()
        .map_err(step("reading the schema version"))?;
    if found != Some(SCHEMA_VERSION) {
        return Err(SqliteOpenError::IncompatibleSchema {
            path: path.to_path_buf(),
            found: found.unwrap_or(0),
            supported: SCHEMA_VERSION,
        });
    }
    let (revision, compacted) =
        load_revisions(&conn).map_err(step("reading the current revision"))?;
    let first_reader = open_reader(path).map_err(step("opening a reader"))?;
    Ok(OpenedFile {
        lock,
        writer_conn: conn,
        first_reader,
        revision,
        compacted,
    })
}

/// Takes the exclusive lock on `<path>.lock`, so one store at a time uses the file.
fn lock_file(path: &Path) -> Result<File, SqliteOpenError> {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    let lock_path = PathBuf::from(name);
    let file = crate::state_files::private_open_options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|source| SqliteOpenError::Lock {
            path: lock_path.clone(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(SqliteOpenError::InUse {
            path: path.to_path_buf(),
            lock: lock_path,
        }),
        Err(TryLockError::Error(source)) => Err(SqliteOpenError::Lock {
            path: lock_path,
            source,
        }),
    }
}

/// Tells a file that is not a database apart from other SQLite failures.
fn classify_open_error(
    path: &Path,
    step: &'static str,
    source: rusqlite::Error,
) -> SqliteOpenError {
    if source.sqlite_error_code() == Some(ErrorCode::NotADatabase) {
        SqliteOpenError::NotADatabase {
            path: path.to_path_buf(),
        }
    } else {
        SqliteOpenError::Sqlite {
            path: path.to_path_buf(),
            step,
            source,
        }
    }
}

/// Opens a read-only connection with the store's busy timeout.
pub(super) fn open_reader(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(conn)
}
