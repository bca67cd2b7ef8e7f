//! Getting at a stick's files: mounting it (nosuid, nodev, noexec, nosymfollow, in a
//! private directory), preparing an empty one, and unmounting it before saying "safe to
//! remove". A stick is prepared by whoever had it last: no link on it is ever followed.
//!
//! Three ways, one interface ([`StickAccess`]):
//! - [`HelperAccess`] on the box: plugnode runs unprivileged, so a small root helper
//!   (`systemd/mount-helper`, reached over `/run/plugnode-mount.sock`) mounts and unmounts;
//! - [`DirectAccess`] when plugnode itself may mount (root: tests, a developer's machine);
//! - [`FolderAccess`] for the demo, where a folder stands in for the stick.
//!
//! Each one puts plugnode's files in `plugnode-backup/` on the stick and never touches
//! anything else there.

use super::stick::{probe, Contents, StickDevice};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// plugnode's folder on a stick.
pub const BACKUP_DIR: &str = "plugnode-backup";
/// The volume label of sticks plugnode prepared.
pub const PLUGNODE_LABEL: &str = "PLUGNODE";

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StickError {
    /// Nothing on it: it may be prepared for backups once the user agrees.
    #[error("the stick is empty")]
    Empty,
    /// plugnode's own stick (label PLUGNODE) whose file system cannot be used: it may be
    /// prepared again once the user agrees.
    #[error("{0}")]
    DamagedPlugnodeStick(String),
    #[error("{0}")]
    Unusable(String),
    /// Something still uses it: it was not unmounted.
    #[error("{0}")]
    Busy(String),
    /// Preparing refused: it holds data.
    #[error("{0}")]
    NotEmpty(String),
    /// The mount helper gave no answer within its limit (a stick that hangs).
    #[error("{0}")]
    TimedOut(String),
}

/// How plugnode gets at a stick's files.
pub trait StickAccess: Send + Sync {
    /// Mounts the stick; returns plugnode's folder on it.
    fn mount(&self, stick: &StickDevice) -> Result<PathBuf, StickError>;
    /// Unmounts it (after flushing). Refuses when busy.
    fn unmount(&self, stick: &StickDevice) -> Result<(), StickError>;
    /// Prepares an empty stick for backups (a file system labelled PLUGNODE). Refuses a
    /// stick that holds anything.
    fn format(&self, stick: &StickDevice) -> Result<(), StickError>;
    /// Where the stick is mounted (for checking it is still there), if it is a real mount.
    fn mount_point(&self) -> Option<PathBuf>;
}

/// Whether `dir` is a mount point right now (from /proc/self/mountinfo).
pub fn is_mounted(dir: &Path) -> bool {
    let Ok(table) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let wanted = dir.to_string_lossy();
    table
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .any(|mount_point| unescape_mountinfo(mount_point) == wanted)
}

pub(super) fn unescape_mountinfo(field: &str) -> String {
    field
        .replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

// --- root helper ----------------------------------------------------------------------

/// Asks the root mount helper (the box's way).
pub struct HelperAccess {
    socket: PathBuf,
}

/// How long the helper may take (formatting a large stick is the slowest).
const HELPER_LIMIT: Duration = Duration::from_secs(120);

impl HelperAccess {
    pub const SOCKET: &'static str = "/run/plugnode-mount.sock";

    pub fn new(socket: PathBuf) -> Self {
        HelperAccess { socket }
    }

    fn ask(&self, request: &str) -> Result<String, StickError> {
        let helper_missing = |err: std::io::Error| {
            StickError::Unusable(format!(
                "plugnode's mount helper does not answer ({err}); check that \
                 plugnode-mount.socket is enabled"
            ))
        };
        let mut stream = UnixStream::connect(&self.socket).map_err(helper_missing)?;
        stream
            .set_read_timeout(Some(HELPER_LIMIT))
            .map_err(helper_missing)?;
        writeln!(stream, "{request}").map_err(helper_missing)?;
        let mut answer = String::new();
        BufReader::new(stream)
            .read_line(&mut answer)
            .map_err(|err| match err.kind() {
                // The read timeout above ran out: the helper is stuck on the stick.
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                    StickError::TimedOut(format!(
                        "plugnode's mount helper gave no answer within {} s",
                        HELPER_LIMIT.as_secs()
                    ))
                }
                _ => helper_missing(err),
            })?;
        let answer = answer.trim();
        if let Some(ok) = answer.strip_prefix("ok ") {
            return Ok(ok.to_string());
        }
        if answer.contains("has no file system") {
            return Err(StickError::Empty);
        }
        if let Some(why) = answer.strip_prefix("error damaged-plugnode-stick ") {
            return Err(StickError::DamagedPlugnodeStick(why.to_string()));
        }
        let why = answer.strip_prefix("error ").unwrap_or(answer).to_string();
        // The helper's own words (systemd/mount-helper) for a busy or a non-empty stick.
        if why.contains("is busy") {
            Err(StickError::Busy(why))
        } else if why.contains("does not format it") {
            Err(StickError::NotEmpty(why))
        } else {
            Err(StickError::Unusable(why))
        }
    }
}

impl StickAccess for HelperAccess {
    fn mount(&self, stick: &StickDevice) -> Result<PathBuf, StickError> {
        self.ask(&format!("mount {}", stick.name))
            .map(PathBuf::from)
    }

    fn unmount(&self, _stick: &StickDevice) -> Result<(), StickError> {
        self.ask("unmount").map(|_| ())
    }

    fn format(&self, stick: &StickDevice) -> Result<(), StickError> {
        self.ask(&format!("format {}", stick.name)).map(|_| ())
    }

    fn mount_point(&self) -> Option<PathBuf> {
        Some(PathBuf::from("/media/plugnode/backup"))
    }
}

// --- direct mount (root) --------------------------------------------------------------

/// Mounts by itself (needs CAP_SYS_ADMIN: tests and development as root).
pub struct DirectAccess {
    mount_point: PathBuf,
}

impl DirectAccess {
    pub fn new(mount_point: PathBuf) -> Self {
        DirectAccess { mount_point }
    }
}

impl StickAccess for DirectAccess {
    fn mount(&self, stick: &StickDevice) -> Result<PathBuf, StickError> {
        use nix::mount::{mount, MsFlags};
        let dir = self.mount_point.join(BACKUP_DIR);
        // Left over from a failed session (or a dead plugnode): start clean, so the file
        // system is checked and mounted read-write again.
        if is_mounted(&self.mount_point) && nix::mount::umount(&self.mount_point).is_err() {
            let _ = nix::mount::umount2(&self.mount_point, nix::mount::MntFlags::MNT_DETACH);
        }
        let contents = probe(&stick.path).map_err(|err| {
            StickError::Unusable(format!("cannot read {}: {err}", stick.path.display()))
        })?;
        let (fstype, ours) = match contents {
            Contents::Usable { fstype, label } => (fstype, label == PLUGNODE_LABEL),
            Contents::Empty => return Err(StickError::Empty),
            Contents::Unsupported(name) => {
                return Err(StickError::Unusable(format!(
                    "the stick has a {name} file system, which plugnode does not write to; use a \
                     FAT32, exFAT or ext4 stick (plugnode never formats a stick that holds data)"
                )))
            }
            Contents::Unknown => {
                return Err(StickError::Unusable(
                    "plugnode cannot tell what is on this stick, so it leaves it alone; use a \
                     FAT32, exFAT or ext4 stick"
                        .into(),
                ))
            }
        };
        crate::fsutil::ensure_private_dir(&self.mount_point, 0o700)
            .map_err(|err| StickError::Unusable(format!("cannot create the mount point: {err}")))?;
        // A stick pulled out without unmounting: let fsck repair what it safely can.
        let _ = std::process::Command::new("fsck")
            .args(["-a", "-t", fstype])
            .arg(&stick.path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        // nosymfollow: the kernel follows no link on the stick (a `plugnode-backup` or a
        // journal pointing at the channel store), whatever opens it.
        let flags = MsFlags::MS_NOSUID
            | MsFlags::MS_NODEV
            | MsFlags::MS_NOEXEC
            | MsFlags::MS_NOATIME
            | MsFlags::from_bits_retain(nix::libc::MS_NOSYMFOLLOW);
        // ext4 with errors=remount-ro: a damaged file system stops taking writes (the
        // mirror then fails loudly) instead of taking them into damaged structures.
        let options = match fstype {
            "vfat" | "exfat" => Some("umask=0077"),
            _ => Some("errors=remount-ro"),
        };
        mount(
            Some(&stick.path),
            &self.mount_point,
            Some(fstype),
            flags,
            options,
        )
        .map_err(|err| {
            let why = format!("its {fstype} file system could not be mounted ({err})");
            if ours {
                StickError::DamagedPlugnodeStick(why)
            } else {
                StickError::Unusable(format!("{why}: it may be damaged; check it on a computer"))
            }
        })?;
        if let Err(err) = super::stick_files::ensure_dir(&dir, 0o700) {
            let _ = nix::mount::umount(&self.mount_point);
            if let Some(refused) = super::stick_files::refusal(&err) {
                return Err(StickError::Unusable(refused.to_string()));
            }
            return Err(StickError::Unusable(format!(
                "the stick is read-only or full ({err})"
            )));
        }
        Ok(dir)
    }

    fn unmount(&self, _stick: &StickDevice) -> Result<(), StickError> {
        if !is_mounted(&self.mount_point) {
            return Ok(());
        }
        nix::unistd::sync();
        nix::mount::umount(&self.mount_point).map_err(|err| match err {
            nix::errno::Errno::EBUSY => {
                StickError::Busy(format!("the stick is busy and was not unmounted ({err})"))
            }
            _ => StickError::Unusable(format!("the stick was not unmounted ({err})")),
        })
    }

    fn format(&self, stick: &StickDevice) -> Result<(), StickError> {
        // Look again right before: never format anything that holds data (other than an
        // unusable stick of plugnode's own).
        match probe(&stick.path) {
            Ok(Contents::Empty) => {}
            Ok(Contents::Usable { label, .. }) if label == PLUGNODE_LABEL => {}
            Ok(_) => {
                return Err(StickError::NotEmpty(
                    "the stick is not empty (any more): plugnode does not format it".into(),
                ))
            }
            Err(err) => {
                return Err(StickError::Unusable(format!(
                    "cannot read the stick: {err}"
                )))
            }
        }
        let output = std::process::Command::new("mkfs.ext4")
            .args(["-q", "-F", "-L", PLUGNODE_LABEL])
            .arg(&stick.path)
            .output()
            .map_err(|err| StickError::Unusable(format!("cannot run mkfs.ext4: {err}")))?;
        if !output.status.success() {
            return Err(StickError::Unusable(format!(
                "preparing the stick failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        Ok(())
    }

    fn mount_point(&self) -> Option<PathBuf> {
        Some(self.mount_point.clone())
    }
}

// --- a folder (the demo) --------------------------------------------------------------

/// The demo's stick is a folder; "mounting" makes plugnode's folder inside it.
pub struct FolderAccess;

impl StickAccess for FolderAccess {
    fn mount(&self, stick: &StickDevice) -> Result<PathBuf, StickError> {
        let dir = stick.path.join(BACKUP_DIR);
        super::stick_files::ensure_dir(&dir, 0o700).map_err(
            |err| match super::stick_files::refusal(&err) {
                Some(refused) => StickError::Unusable(refused.to_string()),
                None => StickError::Unusable(format!("cannot write to the folder: {err}")),
            },
        )?;
        Ok(dir)
    }

    fn unmount(&self, _stick: &StickDevice) -> Result<(), StickError> {
        nix::unistd::sync();
        Ok(())
    }

    fn format(&self, _stick: &StickDevice) -> Result<(), StickError> {
        Ok(())
    }

    fn mount_point(&self) -> Option<PathBuf> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_file_system_is_a_mount_point_and_a_temp_dir_is_not() {
        assert!(is_mounted(Path::new("/")));
        let dir = tempfile::tempdir().unwrap();
        assert!(!is_mounted(dir.path()));
    }

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape_mountinfo("/media/my\\040stick"), "/media/my stick");
    }

    /// The helper's protocol, against a fake helper on a socket.
    #[test]
    fn speaks_the_mount_helpers_protocol() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("mount.sock");
        let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        let server = std::thread::spawn(move || {
            let mut requests = Vec::new();
            for answer in [
                "ok /media/plugnode/backup/plugnode-backup",
                "error sdb has no file system; format the stick as FAT32, exFAT or ext4",
                "error sdc has a ntfs file system; format the stick as FAT32, exFAT or ext4",
                "error the stick is busy and was not unmounted; try again",
                "error the stick is not empty; plugnode does not format it",
            ] {
                let (stream, _) = listener.accept().unwrap();
                let mut line = String::new();
                BufReader::new(&stream).read_line(&mut line).unwrap();
                requests.push(line.trim().to_string());
                writeln!(&stream, "{answer}").unwrap();
            }
            requests
        });
        let helper = HelperAccess::new(socket);
        let stick = |name: &str| StickDevice {
            name: name.into(),
            path: PathBuf::from("/dev").join(name),
            description: String::new(),
            size_bytes: 1,
            is_folder: false,
        };
        assert_eq!(
            helper.mount(&stick("sda1")).unwrap(),
            PathBuf::from("/media/plugnode/backup/plugnode-backup")
        );
        assert_eq!(helper.mount(&stick("sdb")).unwrap_err(), StickError::Empty);
        assert!(matches!(
            helper.mount(&stick("sdc")).unwrap_err(),
            StickError::Unusable(message) if message.contains("ntfs")
        ));
        assert!(matches!(
            helper.unmount(&stick("sda1")).unwrap_err(),
            StickError::Busy(_)
        ));
        assert!(matches!(
            helper.format(&stick("sdd")).unwrap_err(),
            StickError::NotEmpty(_)
        ));
        assert_eq!(
            server.join().unwrap(),
            vec![
                "mount sda1",
                "mount sdb",
                "mount sdc",
                "unmount",
                "format sdd"
            ]
        );
    }
}
