//! `tar` in the simulated container, for `kubectl cp`: it copies out of a
//! pod with `tar cf - <path>` and into one with `tar -xmf - -C <dir>`.

use std::io::Cursor;

use super::files::normalize;
use super::shell::{Flow, Input, Output, Shell};

/// Runs `tar` with `args`: create (`c`) to stdout or extract (`x`) from
/// stdin, with `-C dir`; other flags are accepted and ignored.
pub(crate) async fn run(
    shell: &mut Shell,
    args: &[String],
    input: &mut Input,
    out: &mut Output,
    err: &mut Output,
) -> Flow {
    let mut create = false;
    let mut extract = false;
    let mut dir: Option<String> = None;
    let mut paths = Vec::new();
    let mut args = args.iter().peekable();
    let mut first = true;
    while let Some(arg) = args.next() {
        let flags = if arg.starts_with("--") {
            None
        } else if let Some(short) = arg.strip_prefix('-').filter(|s| !s.is_empty()) {
            Some(short)
        } else if first {
            Some(arg.as_str())
        } else {
            None
        };
        first = false;
        match flags {
            Some(flags) => {
                create |= flags.contains('c');
                extract |= flags.contains('x');
                if flags.contains('C') {
                    dir = args.next().cloned();
                }
                if flags.contains('f') {
                    // The archive is stdin or stdout: `f -`.
                    if args.peek().map(|a| a.as_str()) == Some("-") {
                        args.next();
                    }
                }
            }
            None if arg.starts_with("--") => {}
            None => paths.push(arg.clone()),
        }
    }
    if create == extract {
        err.line("tar: need exactly one of -c or -x").await;
        return Flow::Status(2);
    }
    if create {
        let mut archive = tar::Builder::new(Vec::new());
        let mut status = 0;
        for path in &paths {
            let absolute = shell.absolute(dir.as_deref(), path);
            let tree = shell
                .files
                .lock()
                .map(|f| f.tree(&absolute))
                .unwrap_or_default();
            if tree.is_empty() {
                err.line(&format!(
                    "tar: {path}: Cannot stat: No such file or directory"
                ))
                .await;
                status = 2;
                continue;
            }
            for (file, data) in tree {
                let mut header = tar::Header::new_gnu();
                header.set_size(data.len() as u64);
                header.set_mode(0o644);
                header.set_mtime(0);
                header.set_entry_type(tar::EntryType::Regular);
                let name = file.trim_start_matches('/');
                if archive
                    .append_data(&mut header, name, data.as_slice())
                    .is_err()
                {
                    err.line(&format!("tar: {name}: cannot archive")).await;
                    status = 2;
                }
            }
        }
        match archive.into_inner() {
            Ok(bytes) => out.write(&bytes).await,
            Err(e) => {
                err.line(&format!("tar: {e}")).await;
                status = 2;
            }
        }
        return Flow::Status(status);
    }
    let bytes = input.read_all().await;
    let base = normalize(dir.as_deref().unwrap_or("/"));
    match unpack(bytes, &base) {
        Ok(entries) => {
            if let Ok(mut files) = shell.files.lock() {
                for (path, data) in entries {
                    match data {
                        None => files.mkdir(&path),
                        Some(data) => files.write(&path, &data, false),
                    }
                }
            }
            Flow::Status(0)
        }
        Err(message) => {
            err.line(&format!("tar: {message}")).await;
            Flow::Status(2)
        }
    }
}

/// A path and its content (`None` for a directory).
type Entry = (String, Option<Vec<u8>>);

/// The archive's directories and files, at their paths under `base`.
/// Nothing is written unless the whole archive reads.
fn unpack(bytes: Vec<u8>, base: &str) -> Result<Vec<Entry>, String> {
    let mut archive = tar::Archive::new(Cursor::new(bytes));
    let mut out = Vec::new();
    for entry in archive.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| e.to_string())?;
        let path = entry
            .path()
            .map_err(|e| e.to_string())?
            .to_string_lossy()
            .into_owned();
        let target = normalize(&format!("{base}/{path}"));
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            out.push((target, None));
        } else if kind.is_file() {
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut data)
                .map_err(|e| format!("{path}: {e}"))?;
            out.push((target, Some(data)));
        }
    }
    Ok(out)
}
