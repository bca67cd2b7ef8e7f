//! File writes that survive power loss: write a temp file, fsync it, rename it over the
//! target, fsync the directory. Pulling the plug at any instant leaves either the old or
//! the new file, never a torn one.
//!
//! The temp file is always a new file (`O_CREAT | O_EXCL`, random name): a name someone
//! planted (a link on a backup stick pointing at the channel store) is never opened.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Atomically replaces `path` with `contents`, created with permission `mode` (e.g. 0o600
/// for secrets; the mode is set before any byte is written).
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let (tmp, mut file) = create_temp(dir, &name.to_string_lossy(), mode)?;
    let result = (|| {
        // `mode` is filtered by the umask on create; make it exact.
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.write_all(contents)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// A new temp file next to `name` in `dir`: created, never opened if it exists (O_EXCL
/// also refuses a link of that name), with a random part so a planted name is not hit.
fn create_temp(dir: &Path, name: &str, mode: u32) -> io::Result<(std::path::PathBuf, File)> {
    let mut attempts = 0;
    loop {
        let tmp = dir.join(format!(
            ".{name}.tmp-{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
            .open(&tmp)
        {
            Ok(file) => return Ok((tmp, file)),
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists && attempts < 3 => {
                attempts += 1;
            }
            Err(err) => return Err(err),
        }
    }
}

/// Makes a directory entry change (create, rename, delete) in `dir` durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_DIRECTORY | nix::libc::O_CLOEXEC)
        .open(dir)?
        .sync_all()
}

/// Creates `dir` (and parents) if missing and sets its permission to `mode`.
pub fn ensure_private_dir(dir: &Path, mode: u32) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(mode))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_content_with_exact_mode_and_no_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.toml");
        write_atomic(&path, b"one", 0o600).unwrap();
        write_atomic(&path, b"two", 0o600).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "temp files must not be left behind");
    }

    #[test]
    fn a_planted_temp_name_is_never_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("channels.sqlite");
        fs::write(&victim, b"channel state").unwrap();
        let path = dir.path().join("snapshot.pnb");
        // The old temp name, and names like it, as links to the victim.
        let pid = std::process::id();
        for name in [
            format!(".snapshot.pnb.tmp-{pid}"),
            format!(".snapshot.pnb.tmp-{pid}-0000000000000000"),
        ] {
            std::os::unix::fs::symlink(&victim, dir.path().join(name)).unwrap();
        }
        write_atomic(&path, b"backup", 0o600).unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"channel state");
        assert_eq!(fs::read(&path).unwrap(), b"backup");
        assert!(!fs::symlink_metadata(&path).unwrap().is_symlink());
    }

    #[test]
    fn private_dirs_get_their_mode() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = dir.path().join("a/secrets");
        ensure_private_dir(&secrets, 0o700).unwrap();
        let mode = fs::metadata(&secrets).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }
}
