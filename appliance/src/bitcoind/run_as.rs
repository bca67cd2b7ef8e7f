//! bitcoind under a system user of its own (`bitcoind.user`; the image's "bitcoind"), as
//! nix-bitcoin runs it. A bitcoind exploit then runs as a user that owns nothing of
//! plugnode's: the seed, the web secrets, the backup key and the channel store are
//! plugnode's files, 0600 in 0700 directories; it cannot signal or trace plugnode, and it
//! keeps no capability.
//!
//! What it takes of plugnode (the image's unit grants exactly these): CAP_SETUID and
//! CAP_SETGID to start the child as that user and drop plugnode's extra groups (gpio,
//! spi), CAP_KILL to signal it, and CAP_DAC_READ_SEARCH to measure its data directory
//! (bitcoind makes everything in it 0600/0700 whatever umask it is given). The data
//! directory must belong to that user: the image's tmpfiles rule sees to it at boot, and
//! plugnode hands over a directory itself when it may (as root, or with CAP_CHOWN).

use nix::unistd::{Gid, Uid, User};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The user bitcoind runs as, looked up by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunAs {
    pub name: String,
    pub uid: Uid,
    pub gid: Gid,
}

impl RunAs {
    /// The system user `name`, or what to do when there is none.
    pub fn lookup(name: &str) -> Result<RunAs, String> {
        match User::from_name(name) {
            Ok(Some(user)) => Ok(RunAs {
                name: name.to_string(),
                uid: user.uid,
                gid: user.gid,
            }),
            Ok(None) => Err(format!(
                "bitcoind.user is \"{name}\", but this system has no such user: create it \
                 (`useradd --system {name}`) or leave bitcoind.user out of the config"
            )),
            Err(err) => Err(format!("cannot look up the user \"{name}\": {err}")),
        }
    }

    /// In the child, between fork and exec: becomes the user, with its group only and no
    /// capability left (a change between two users who are not root keeps them, and the
    /// ambient ones would survive the exec). Only async-signal-safe calls.
    pub fn become_user(&self) -> io::Result<()> {
        nix::unistd::setgroups(&[self.gid])?;
        nix::unistd::setgid(self.gid)?;
        nix::unistd::setuid(self.uid)?;
        drop_all_capabilities()?;
        Ok(())
    }

    /// Makes `datadir` the user's: creates it if missing, and hands it over (with what is
    /// in it, never following links) when it belongs to someone else and plugnode may.
    /// Otherwise says what to run.
    pub fn prepare_datadir(&self, datadir: &Path) -> Result<(), String> {
        // Only a new one: one that is already the user's keeps the modes bitcoind gave it.
        if std::fs::symlink_metadata(datadir).is_err() {
            crate::fsutil::ensure_private_dir(datadir, 0o700).map_err(|err| {
                format!(
                    "cannot create bitcoind's data directory {}: {err}. Check that the data \
                     disk is mounted and writable.",
                    datadir.display()
                )
            })?;
        }
        let owner = std::fs::metadata(datadir)
            .map_err(|err| format!("cannot read {}: {err}", datadir.display()))?
            .uid();
        if owner == self.uid.as_raw() {
            return Ok(());
        }
        hand_over(datadir, self.uid, self.gid).map_err(|err| {
            format!(
                "bitcoind runs as the user \"{name}\", but its data directory {dir} belongs to \
                 another user and plugnode may not hand it over ({err}). Run `chown -R \
                 {name}: {dir}` as root, then Retry.",
                name = self.name,
                dir = datadir.display()
            )
        })
    }
}

/// Empties the effective, permitted and inheritable sets, and with them the ambient one
/// (capset(2); libc has no wrapper and nix none either).
fn drop_all_capabilities() -> io::Result<()> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Sets {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    let mut header = Header {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    // Version 3 takes two sets of 32 bits each: capabilities 0..=31 and 32..=63.
    let none = [Sets::default(); 2];
    // SAFETY: the header and the two sets are the layout capset(2) reads.
    let result = unsafe {
        nix::libc::syscall(
            nix::libc::SYS_capset,
            &mut header as *mut Header,
            none.as_ptr(),
        )
    };
    if result != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `chown -hR uid:gid path`.
fn hand_over(path: &Path, uid: Uid, gid: Gid) -> io::Result<()> {
    std::os::unix::fs::lchown(path, Some(uid.as_raw()), Some(gid.as_raw()))?;
    if std::fs::symlink_metadata(path)?.is_dir() {
        for entry in std::fs::read_dir(path)? {
            hand_over(&entry?.path(), uid, gid)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_user_is_named_with_what_to_do() {
        let err = RunAs::lookup("no-such-user-here").unwrap_err();
        assert!(
            err.contains("no-such-user-here") && err.contains("useradd"),
            "{err}"
        );
        let root = RunAs::lookup("root").unwrap();
        assert_eq!(root.uid, Uid::from_raw(0));
    }

    #[test]
    fn the_data_directory_is_handed_over_or_the_fix_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let datadir = dir.path().join("bitcoind");
        std::fs::create_dir_all(datadir.join("blocks")).unwrap();
        std::fs::write(datadir.join("blocks/blk00000.dat"), b"x").unwrap();
        std::os::unix::fs::symlink("/etc", datadir.join("link")).unwrap();
        let nobody = RunAs {
            name: "nobody".into(),
            uid: Uid::from_raw(65534),
            gid: Gid::from_raw(65534),
        };
        let result = nobody.prepare_datadir(&datadir);
        if Uid::effective().is_root() {
            result.unwrap();
            for path in ["", "blocks", "blocks/blk00000.dat"] {
                let meta = std::fs::metadata(datadir.join(path)).unwrap();
                assert_eq!((meta.uid(), meta.gid()), (65534, 65534), "{path}");
            }
            // The link itself changed hands, not what it points to.
            assert_eq!(std::fs::metadata("/etc").unwrap().uid(), 0);
        } else {
            let err = result.unwrap_err();
            assert!(err.contains("chown -R nobody:"), "{err}");
        }
    }
}
