//! The file's layout: the `meta` and `log` tables, and how revisions and
//! keys are encoded in their columns (see the parent module for the design).

use rusqlite::Connection;

use crate::storage::Revision;

/// The layout version this build reads and writes; bumped on any change an
/// older build could misread.
pub const SCHEMA_VERSION: i64 = 1;

/// `PRAGMA application_id` of our files ("vcls"), so a foreign SQLite file
/// is recognised before anything reads its tables.
pub(super) const APPLICATION_ID: i32 = 0x7663_6c73;

/// Creates the tables of an empty file and marks it as ours.
pub(super) fn create_schema(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(&format!(
        "BEGIN IMMEDIATE;
         CREATE TABLE meta (
             name  TEXT PRIMARY KEY NOT NULL,
             value INTEGER NOT NULL
         ) WITHOUT ROWID;
         CREATE TABLE log (
             revision        INTEGER PRIMARY KEY AUTOINCREMENT,
             key             BLOB    NOT NULL,
             value           BLOB    NOT NULL,
             create_revision INTEGER NOT NULL,
             prev_revision   INTEGER NOT NULL,
             deleted         INTEGER NOT NULL
         );
         CREATE INDEX log_key_revision ON log (key, revision);
         INSERT INTO meta (name, value) VALUES ('schema_version', {SCHEMA_VERSION}), ('compacted', 0);
         PRAGMA application_id = {APPLICATION_ID};
         COMMIT;"
    ))
}

/// The highest revision ever handed out and the compacted revision.
pub(super) fn load_revisions(conn: &Connection) -> rusqlite::Result<(Revision, Revision)> {
    let (revision, compacted): (i64, i64) = conn.query_row(
        "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'log'), 0),
                (SELECT value FROM meta WHERE name = 'compacted')",
        [],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    let revision = Revision::try_from(revision).unwrap_or(0);
    let compacted = Revision::try_from(compacted).unwrap_or(0);
    Ok((revision.max(compacted), compacted))
}

/// A revision as SQLite stores it; revisions beyond `i64::MAX` cannot exist,
/// so saturating keeps comparisons right.
pub(super) fn to_sql(revision: Revision) -> i64 {
    i64::try_from(revision).unwrap_or(i64::MAX)
}

/// Reads a revision column; a negative value can only come from a corrupt
/// or foreign file and is reported as such.
pub(super) fn revision_at(row: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<Revision> {
    let raw: i64 = row.get(idx)?;
    Revision::try_from(raw).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(idx, raw))
}

/// Reads a key column (stored as a BLOB so ordering is byte-wise).
pub(super) fn key_at(row: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<String> {
    let raw: Vec<u8> = row.get(idx)?;
    String::from_utf8(raw).map_err(|err| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Blob, Box::new(err))
    })
}

/// The smallest byte string greater than every key starting with `prefix`.
/// Keys are UTF-8, which never contains the byte `0xFF`, so bumping the last
/// byte always works and `[0xFF]` bounds the empty prefix.
pub(super) fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    match prefix.split_last() {
        Some((last, rest)) if *last < 0xFF => {
            let mut end = rest.to_vec();
            end.push(last + 1);
            end
        }
        _ => vec![0xFF],
    }
}

/// The inclusive lower bound of a list: the prefix, or just after
/// `start_after` when that lies inside the prefix range.
pub(super) fn list_start(prefix: &str, start_after: Option<&str>) -> Vec<u8> {
    match start_after {
        Some(after) if after >= prefix => {
            let mut start = after.as_bytes().to_vec();
            start.push(0);
            start
        }
        _ => prefix.as_bytes().to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_bounds_every_key_under_the_prefix() {
        assert_eq!(prefix_end(b"/a/"), b"/a0".to_vec());
        assert_eq!(prefix_end(b""), vec![0xFF]);
        assert!(b"/a/\xF4\x8F\xBF\xBF".as_slice() < prefix_end(b"/a/").as_slice());
        assert_eq!(list_start("/p/", Some("/p/k")), b"/p/k\0".to_vec());
        assert_eq!(list_start("/p/", Some("/a")), b"/p/".to_vec());
        assert_eq!(list_start("/p/", None), b"/p/".to_vec());
    }
}
