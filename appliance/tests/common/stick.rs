//! A USB stick for tests: an ext4 image on a loop device (tests run as root, as CI does).
//! Plugging in and pulling out is attaching and detaching the loop device; faults are
//! made from outside with mount(8), as a user's stick would have them.

use std::path::{Path, PathBuf};
use std::process::Command;

/// An ext4 image attached to a loop device; detached (and unmounted) on drop. plugnode
/// sees it through `link`, a symlink to the device: plugging in and pulling out create and
/// remove the link (the loop device itself stays attached, so parallel tests never swap
/// loop numbers).
pub struct LoopStick {
    pub image: PathBuf,
    pub device: Option<PathBuf>,
    pub link: PathBuf,
}

fn run(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|err| panic!("{program}: {err}"));
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

impl LoopStick {
    /// An ext4 image of `size_mb`, holding `files` (path, content) made by someone else.
    pub fn ext4(dir: &Path, name: &str, size_mb: u32, files: &[(&str, &[u8])]) -> LoopStick {
        assert!(
            nix::unistd::geteuid().is_root(),
            "the backup tests mount loop devices and need root (CI runs as root)"
        );
        let staging = dir.join(format!("{name}-files"));
        std::fs::create_dir_all(&staging).unwrap();
        for (path, content) in files {
            let path = staging.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        }
        let image = dir.join(format!("{name}.img"));
        let file = std::fs::File::create(&image).unwrap();
        file.set_len(u64::from(size_mb) * 1024 * 1024).unwrap();
        drop(file);
        run(
            "mkfs.ext4",
            &[
                "-q",
                "-F",
                "-L",
                "TESTSTICK",
                "-d",
                staging.to_str().unwrap(),
                image.to_str().unwrap(),
            ],
        );
        LoopStick::attach(dir, name, image)
    }

    /// An image with these exact bytes (blank, garbage, …).
    pub fn raw(dir: &Path, name: &str, bytes: &[u8]) -> LoopStick {
        let image = dir.join(format!("{name}.img"));
        std::fs::write(&image, bytes).unwrap();
        LoopStick::attach(dir, name, image)
    }

    fn attach(dir: &Path, name: &str, image: PathBuf) -> LoopStick {
        assert!(
            nix::unistd::geteuid().is_root(),
            "the backup tests mount loop devices and need root (CI runs as root)"
        );
        let device = run("losetup", &["--find", "--show", image.to_str().unwrap()]);
        LoopStick {
            image,
            device: Some(PathBuf::from(device)),
            link: dir.join(format!("{name}-dev")),
        }
    }

    pub fn device(&self) -> PathBuf {
        self.device.clone().expect("attached")
    }

    /// Plugs the stick in (plugnode finds it at its next look).
    pub fn plug_in(&self) {
        let _ = std::fs::remove_file(&self.link);
        std::os::unix::fs::symlink(self.device(), &self.link).unwrap();
    }

    /// Pulls the stick out without ejecting: gone from the device list, its mount lazily
    /// detached, as the kernel does with a vanished device.
    pub fn pull_out(&self, mount_dir: &Path) {
        let _ = std::fs::remove_file(&self.link);
        let _ = Command::new("umount").arg("-l").arg(mount_dir).status();
    }

    /// Takes the stick out after "safe to remove".
    pub fn take_out(&self) {
        let _ = std::fs::remove_file(&self.link);
    }

    /// Mounts the stick's file system at `at` (read-only when asked), to look at it.
    pub fn mount_at(&self, at: &Path, read_only: bool) {
        std::fs::create_dir_all(at).unwrap();
        let options = if read_only { "ro" } else { "rw" };
        run(
            "mount",
            &[
                "-o",
                options,
                self.device().to_str().unwrap(),
                at.to_str().unwrap(),
            ],
        );
    }
}

impl LoopStick {
    /// Changes what is on the stick, as its owner (or an attacker) would on another
    /// computer: mounted at `at` for `change`, then unmounted.
    pub fn edit(&self, at: &Path, change: impl FnOnce(&Path)) {
        self.mount_at(at, false);
        change(at);
        run("umount", &[at.to_str().unwrap()]);
    }
}

/// Freezes the file system mounted at a path (`fsfreeze`): every write to it waits, as on
/// a dying USB device. Thawed when dropped, so a failing test leaves nothing frozen.
pub struct Frozen(PathBuf);

impl Frozen {
    pub fn freeze(mount: &Path) -> Frozen {
        run("fsfreeze", &["--freeze", mount.to_str().unwrap()]);
        Frozen(mount.to_path_buf())
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        let _ = Command::new("fsfreeze")
            .arg("--unfreeze")
            .arg(&self.0)
            .status();
    }
}

impl Drop for LoopStick {
    fn drop(&mut self) {
        if let Some(device) = self.device.take() {
            // Unmount wherever it is still mounted, then detach. By device number: plugnode
            // mounts it through the link, so the mount's source is the link's path (and a
            // mount left by a killed plugnode stayed behind, with its loop device).
            let number = std::fs::metadata(&device).ok().map(|meta| {
                use std::os::unix::fs::MetadataExt;
                let rdev = meta.rdev();
                format!(
                    "{}:{}",
                    nix::sys::stat::major(rdev),
                    nix::sys::stat::minor(rdev)
                )
            });
            if let (Some(number), Ok(mounts)) =
                (number, std::fs::read_to_string("/proc/self/mountinfo"))
            {
                for line in mounts.lines() {
                    let fields: Vec<&str> = line.split(' ').collect();
                    if fields.get(2) == Some(&number.as_str()) {
                        if let Some(point) = fields.get(4) {
                            let point = point.replace("\\040", " ");
                            let _ = Command::new("umount").arg("-l").arg(point).status();
                        }
                    }
                }
            }
            let _ = Command::new("losetup").arg("-d").arg(&device).status();
        }
    }
}

/// Unmounts `dir` lazily, as `umount -l` does.
pub fn lazy_unmount(dir: &Path) {
    run("umount", &["-l", dir.to_str().unwrap()]);
}

/// The channel store's generation, read from the SD card's database.
pub fn primary_generation(data_dir: &Path) -> u64 {
    let connection = rusqlite::Connection::open_with_flags(
        data_dir.join("lightning/channels.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    connection
        .query_row(
            "SELECT value FROM meta WHERE name = 'generation'",
            [],
            |row| row.get::<_, i64>(0),
        )
        .unwrap_or(0) as u64
}

/// The newest generation on a stick (read from the clear headers of its files).
pub fn stick_generation(backup_dir: &Path) -> Option<u64> {
    plugnode::backup::copies::find_copies(backup_dir)
        .first()
        .map(|copy| copy.generation)
}
