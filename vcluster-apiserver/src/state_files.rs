//! Files that hold a cluster's state or credentials (keys, kubeconfigs,
//! token files, the database): created owner-only, atomically.
//!
//! A data directory readable by other local users hands them the cluster:
//! the admin client key acts as cluster-admin, the database holds every
//! Secret. So directories are created `0700` and files `0600` from the
//! first byte (never written first and tightened after), and a directory
//! left with looser modes by an older build is tightened by [`tighten`],
//! which names what it changed so the caller can warn.
//!
//! ```
//! # fn main() -> std::io::Result<()> {
//! use vcluster_apiserver::state_files;
//! let dir = tempfile::tempdir()?;
//! let state = dir.path().join("state");
//! state_files::create_private_dir(&state)?;
//! state_files::write_private_file(&state.join("admin.key"), b"secret")?;
//! assert!(state_files::tighten(&state)?.is_empty(), "already owner-only");
//! # Ok(())
//! # }
//! ```

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The mode of every directory that holds state.
pub const DIR_MODE: u32 = 0o700;
/// The mode of every file that holds state or credentials.
pub const FILE_MODE: u32 = 0o600;

/// Creates `path` and any missing parents; the directories this creates
/// are `0700` from the start (existing parents are left as they are).
pub fn create_private_dir(path: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(DIR_MODE);
    }
    builder.create(path)
}

/// Options that create a file `0600` (when it does not exist yet).
pub fn private_open_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(FILE_MODE);
    }
    options
}

/// Creates `path` empty and `0600` if it does not exist (a database file
/// its library would otherwise create world-readable); an existing file is
/// left alone.
pub fn ensure_private_file(path: &Path) -> io::Result<()> {
    match private_open_options()
        .write(true)
        .create_new(true)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(err) => Err(err),
    }
}

/// Writes `contents` to `path` atomically and owner-only: a `0600`
/// temporary file next to it, synced, then renamed over `path`, so a
/// reader never sees a partial file and no one else ever can read it.
pub fn write_private_file(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".tmp-{}", std::process::id()));
    let tmp = PathBuf::from(name);
    let written = (|| {
        let mut file: File = private_open_options()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        #[cfg(unix)]
        {
            // An old temporary file may have survived with other modes.
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(fs::Permissions::from_mode(FILE_MODE))?;
        }
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

/// Makes `dir` and everything below it owner-only (directories `0700`,
/// files `0600`); returns the paths whose modes it changed, for a warning.
/// Symbolic links are not followed.
pub fn tighten(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut changed = Vec::new();
    tighten_into(dir, &mut changed)?;
    Ok(changed)
}

#[cfg(unix)]
fn tighten_into(path: &Path, changed: &mut Vec<PathBuf>) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let metadata = fs::symlink_metadata(path)?;
    if metadata.file_type().is_symlink() {
        return Ok(());
    }
    let wanted = if metadata.is_dir() {
        DIR_MODE
    } else {
        FILE_MODE
    };
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        fs::set_permissions(path, fs::Permissions::from_mode(mode & wanted))?;
        changed.push(path.to_path_buf());
    }
    if metadata.is_dir() {
        for entry in fs::read_dir(path)? {
            tighten_into(&entry?.path(), changed)?;
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn tighten_into(_path: &Path, _changed: &mut Vec<PathBuf>) -> io::Result<()> {
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).expect("metadata").permissions().mode() & 0o777
    }

    #[test]
    fn created_directories_and_files_are_owner_only() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("a/b");
        create_private_dir(&dir).expect("create");
        assert_eq!((mode(&root.path().join("a")), mode(&dir)), (0o700, 0o700));
        let key = dir.join("admin.key");
        write_private_file(&key, b"one").expect("write");
        write_private_file(&key, b"two").expect("overwrite");
        assert_eq!(mode(&key), 0o600);
        assert_eq!(fs::read(&key).expect("read"), b"two");
        let db = dir.join("virtual.db");
        ensure_private_file(&db).expect("ensure");
        assert_eq!(mode(&db), 0o600);
        assert_eq!(
            fs::read_dir(&dir).expect("list").count(),
            2,
            "no temporary left"
        );
    }

    #[test]
    fn loose_modes_are_tightened_and_named() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("state");
        fs::create_dir(&dir).expect("mkdir");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod");
        let loose = dir.join("server.key");
        fs::write(&loose, "k").expect("write");
        fs::set_permissions(&loose, fs::Permissions::from_mode(0o644)).expect("chmod");
        let tight = dir.join("sa.key");
        write_private_file(&tight, b"k").expect("write");
        let changed = tighten(&dir).expect("tighten");
        assert_eq!(changed, [dir.clone(), loose.clone()]);
        assert_eq!(
            (mode(&dir), mode(&loose), mode(&tight)),
            (0o700, 0o600, 0o600)
        );
        assert!(tighten(&dir).expect("again").is_empty());
    }
}
