//! Files on a backup stick, which anybody may have prepared on another computer.
//!
//! plugnode never follows a symbolic link there (the stick is also mounted `nosymfollow`),
//! creates its files only as new files, and opens an existing one only after checking,
//! on the open descriptor, that it is a plain file no larger than a backup of this box
//! can be: reading a FIFO would wait for ever, and a 4 GB sparse file would take all the
//! memory. What it refuses is named in the backup alert, with what to do.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Larger than any snapshot of a box's channel state (10 channels: about 0.5 MiB).
pub const MAX_SNAPSHOT_BYTES: u64 = 64 * 1024 * 1024;
/// A journal is folded into a new snapshot at 32 MiB; four times that is not a journal.
pub const MAX_JOURNAL_BYTES: u64 = 128 * 1024 * 1024;

/// Why plugnode refuses a file on the stick.
#[derive(Debug, thiserror::Error)]
pub enum StickFileError {
    #[error(
        "{name} on the stick is a link: plugnode never follows links on a backup stick. \
         Delete it on a computer, or use another stick"
    )]
    Link { name: String },
    #[error(
        "{name} on the stick is {what}, not a file: plugnode does not use it. Delete it on a \
         computer, or use another stick"
    )]
    NotAFile { name: String, what: &'static str },
    #[error(
        "{name} on the stick is {size}, more than a backup of this box can be ({limit}): \
         plugnode does not read it. Delete it on a computer, or use another stick"
    )]
    TooLarge {
        name: String,
        size: String,
        limit: String,
    },
}

impl StickFileError {
    fn into_io(self) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, self)
    }
}

/// The refusal inside an I/O error, if that is what it is (for the alert's words).
pub fn refusal(err: &io::Error) -> Option<&StickFileError> {
    err.get_ref()?.downcast_ref::<StickFileError>()
}

/// How the alert names a file: from `plugnode-backup/` on, as the user sees the stick.
pub fn shown(path: &Path) -> String {
    let text = path.to_string_lossy();
    match text.find(super::mount::BACKUP_DIR) {
        Some(at) => text[at..].to_string(),
        None => text.into_owned(),
    }
}

fn what_it_is(kind: std::fs::FileType) -> &'static str {
    if kind.is_dir() {
        "a folder"
    } else if kind.is_fifo() {
        "a FIFO (a pipe)"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_block_device() || kind.is_char_device() {
        "a device"
    } else {
        "something else"
    }
}

/// The size limit for a backup file, from its name.
pub fn limit_for(path: &Path) -> u64 {
    let journal = path
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with(".pnj"));
    if journal {
        MAX_JOURNAL_BYTES
    } else {
        MAX_SNAPSHOT_BYTES
    }
}

fn check_metadata(path: &Path, meta: &std::fs::Metadata, limit: u64) -> io::Result<()> {
    let kind = meta.file_type();
    if kind.is_symlink() {
        return Err(StickFileError::Link { name: shown(path) }.into_io());
    }
    if !kind.is_file() {
        return Err(StickFileError::NotAFile {
            name: shown(path),
            what: what_it_is(kind),
        }
        .into_io());
    }
    if meta.len() > limit {
        return Err(StickFileError::TooLarge {
            name: shown(path),
            size: crate::status::alerts::human_bytes(meta.len()),
            limit: crate::status::alerts::human_bytes(limit),
        }
        .into_io());
    }
    Ok(())
}

/// Checks what is at `path` without following or opening it: `Ok(false)` when nothing is
/// there, `Ok(true)` for a plain file within its limit.
pub fn check(path: &Path) -> io::Result<bool> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) => check_metadata(path, &meta, limit_for(path)).map(|()| true),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(err) => Err(err),
    }
}

/// Opens an existing plain file of at most `limit` bytes for reading. The check is made on
/// the open descriptor (O_NONBLOCK: opening a FIFO does not wait for a writer), so nothing
/// swapped in between the check and the read is read.
pub fn open(path: &Path, limit: u64) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK | nix::libc::O_CLOEXEC)
        .open(path)
        .map_err(|err| {
            if err.raw_os_error() == Some(nix::libc::ELOOP) {
                StickFileError::Link { name: shown(path) }.into_io()
            } else {
                err
            }
        })?;
    check_metadata(path, &file.metadata()?, limit)?;
    Ok(file)
}

/// Reads a whole backup file (within [`limit_for`] its name).
pub fn read(path: &Path) -> io::Result<Vec<u8>> {
    let limit = limit_for(path);
    let file = open(path, limit)?;
    let mut bytes = Vec::new();
    // `take`: a file that grows after the check still stops at the limit.
    file.take(limit).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Reads the first `len` bytes of a backup file (an error if it is shorter).
pub fn read_prefix(path: &Path, len: usize) -> io::Result<Vec<u8>> {
    let mut bytes = vec![0u8; len];
    open(path, limit_for(path))?.read_exact(&mut bytes)?;
    Ok(bytes)
}

/// Makes `dir` a folder of plugnode's with permission `mode`: created if missing, refused
/// if it is a link or not a folder (never `chmod` through a link).
pub fn ensure_dir(dir: &Path, mode: u32) -> io::Result<()> {
    // The folder above (`plugnode-backup`) was made by the mount; tests and the demo's
    // folder may not have it yet.
    if let Some(parent) = dir.parent() {
        if matches!(std::fs::symlink_metadata(parent), Err(err) if err.kind() == io::ErrorKind::NotFound)
        {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(mode)
                .create(parent)?;
        }
    }
    match std::fs::DirBuilder::new().mode(mode).create(dir) {
        Ok(()) => {}
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
        Err(err) => return Err(err),
    }
    let meta = std::fs::symlink_metadata(dir)?;
    if meta.file_type().is_symlink() {
        return Err(StickFileError::Link { name: shown(dir) }.into_io());
    }
    if !meta.is_dir() {
        return Err(StickFileError::NotAFile {
            name: shown(dir),
            what: what_it_is(meta.file_type()),
        }
        .into_io());
    }
    let handle = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_DIRECTORY | nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
        .open(dir)?;
    handle.set_permissions(std::fs::Permissions::from_mode(mode))
}

/// Creates `path` as a new, empty file for appending (a journal). An old plain file of
/// that name is replaced; a link or anything else there is refused.
pub fn create_new_for_append(path: &Path) -> io::Result<File> {
    if check(path)? {
        std::fs::remove_file(path)?;
    }
    OpenOptions::new()
        .append(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
        .open(path)
}

/// An error reading `path` in words for the alert: a refusal as it is, anything else
/// with the file's name.
pub fn describe(path: &Path, err: &io::Error) -> String {
    if refusal(err).is_some() {
        err.to_string()
    } else if err.kind() == io::ErrorKind::UnexpectedEof {
        format!("{} on the stick is cut short", shown(path))
    } else {
        format!("{} on the stick cannot be read ({err})", shown(path))
    }
}

/// Checks every file plugnode may touch in one node's folder (snapshots, journals and
/// their temp files): the first one refused, if any.
pub fn check_folder(dir: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let ours = name.starts_with("snapshot-")
            || name.starts_with("journal-")
            || (name.starts_with('.') && name.contains(".tmp-"));
        if ours {
            check(&entry.path())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_fifos_and_oversized_files_are_refused_with_their_names() {
        let stick = tempfile::tempdir().unwrap();
        let dir = stick.path().join("plugnode-backup/0211");
        std::fs::create_dir_all(&dir).unwrap();
        let victim = stick.path().join("channels.sqlite");
        std::fs::write(&victim, b"state").unwrap();

        let link = dir.join("journal-00000000000000000001.pnj");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let err = create_new_for_append(&link).unwrap_err();
        assert_eq!(
            err.to_string(),
            "plugnode-backup/0211/journal-00000000000000000001.pnj on the stick is a link: \
             plugnode never follows links on a backup stick. Delete it on a computer, or use \
             another stick"
        );
        assert!(matches!(refusal(&err), Some(StickFileError::Link { .. })));
        assert!(read(&link).is_err());
        assert_eq!(std::fs::read(&victim).unwrap(), b"state");

        let fifo = dir.join("snapshot-00000000000000000002.pnb");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        // Returns at once (a plain open would wait for a writer for ever).
        let err = read(&fifo).unwrap_err();
        assert!(
            err.to_string().contains("is a FIFO (a pipe), not a file"),
            "{err}"
        );
        assert!(read_prefix(&fifo, 10).is_err());

        let huge = dir.join("journal-00000000000000000003.pnj");
        std::fs::File::create(&huge)
            .unwrap()
            .set_len(4 << 30)
            .unwrap();
        let err = read(&huge).unwrap_err();
        assert!(err.to_string().contains("is 4.3 GB, more than"), "{err}");

        let err = check_folder(&dir).unwrap_err();
        assert!(refusal(&err).is_some(), "{err}");

        // A link where plugnode's folder should be is refused, its target left alone.
        let outside = stick.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o755)).unwrap();
        let linked_dir = stick.path().join("plugnode-backup/0322");
        std::os::unix::fs::symlink(&outside, &linked_dir).unwrap();
        assert!(ensure_dir(&linked_dir, 0o700).is_err());
        let mode = std::fs::metadata(&outside).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o755);
    }

    #[test]
    fn plain_files_are_read_and_old_journals_replaced() {
        let stick = tempfile::tempdir().unwrap();
        let dir = stick.path().join("plugnode-backup/0211");
        ensure_dir(&dir, 0o700).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let snapshot = dir.join("snapshot-00000000000000000001.pnb");
        std::fs::write(&snapshot, b"PLUGNODE and more").unwrap();
        assert_eq!(read(&snapshot).unwrap(), b"PLUGNODE and more");
        assert_eq!(read_prefix(&snapshot, 8).unwrap(), b"PLUGNODE");
        let journal = dir.join("journal-00000000000000000001.pnj");
        std::fs::write(&journal, b"old records").unwrap();
        check_folder(&dir).unwrap();
        use std::io::Write;
        create_new_for_append(&journal)
            .unwrap()
            .write_all(b"new")
            .unwrap();
        assert_eq!(std::fs::read(&journal).unwrap(), b"new");
    }
}
