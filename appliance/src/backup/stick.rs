//! Finding backup sticks without libudev: the kernel's sysfs, read every couple of seconds
//! (and once at start), and a look at the first bytes of a partition to name its file
//! system.
//!
//! Only USB mass-storage disks count (`sdX` devices whose sysfs path runs through a USB
//! bus), never the SD card (`mmcblk`), zram or loop devices; tests add loop devices
//! explicitly (`backup.extra_devices`). The demo uses a folder as its stick.
//!
//! A USB disk the system uses is no stick: a Pi that boots from a USB SSD has its root
//! there. Any disk with a partition mounted (other than at plugnode's own mount point),
//! used as swap, or held by LVM/dm-crypt/RAID is skipped, and the next one is tried.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};

/// A block device that may be a backup stick.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StickDevice {
    /// Kernel name: `sda1`, `sdb` (no partition table), `loop7`; or the folder's name.
    pub name: String,
    /// `/dev/sda1`, or the folder standing in for a stick.
    pub path: PathBuf,
    /// "SanDisk Cruzer Blade" from sysfs, when known.
    pub description: String,
    pub size_bytes: u64,
    /// A folder (the demo), not a device.
    pub is_folder: bool,
}

impl StickDevice {
    /// A short, stable id for the status and logs ("sda1 SanDisk Cruzer 16 GB").
    pub fn label(&self) -> String {
        let size = crate::status::alerts::human_bytes(self.size_bytes);
        match (self.description.is_empty(), self.is_folder) {
            (_, true) => format!("folder {}", self.path.display()),
            (true, false) => format!("{} ({size})", self.name),
            (false, false) => format!("{} {} ({size})", self.name, self.description),
        }
    }
}

/// Block devices the system is using: mounted file systems and swap.
#[derive(Clone, Debug, Default)]
pub struct InUse {
    /// "major:minor" of mounted devices.
    numbers: HashSet<String>,
    /// Mount sources and swap devices, e.g. `/dev/sda2`.
    paths: HashSet<PathBuf>,
}

impl InUse {
    /// This machine's mounts (`/proc/self/mountinfo`) and swaps (`/proc/swaps`); what is
    /// mounted at `own_mount_point` is plugnode's stick, not the system's.
    pub fn read(own_mount_point: Option<&Path>) -> InUse {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let swaps = std::fs::read_to_string("/proc/swaps").unwrap_or_default();
        InUse::parse(&mountinfo, &swaps, own_mount_point)
    }

    /// Reads a mountinfo table and a swaps table.
    pub fn parse(mountinfo: &str, swaps: &str, own_mount_point: Option<&Path>) -> InUse {
        let mut in_use = InUse::default();
        for line in mountinfo.lines() {
            // "36 35 8:2 / / rw,noatime shared:1 - ext4 /dev/sda2 rw": the optional fields
            // end at " - ", after which come the type and the source.
            let fields: Vec<&str> = line.split(' ').collect();
            let (Some(number), Some(point)) = (fields.get(2), fields.get(4)) else {
                continue;
            };
            let point = super::mount::unescape_mountinfo(point);
            if own_mount_point.is_some_and(|own| Path::new(&point) == own) {
                continue;
            }
            in_use.numbers.insert(number.to_string());
            let source = fields
                .iter()
                .position(|f| *f == "-")
                .and_then(|dash| fields.get(dash + 2));
            if let Some(source) = source {
                in_use
                    .paths
                    .insert(PathBuf::from(super::mount::unescape_mountinfo(source)));
            }
        }
        // "/dev/sda3  partition  1048572  0  -2" after a header line.
        for line in swaps.lines().skip(1) {
            if let Some(device) = line.split_whitespace().next() {
                in_use.paths.insert(PathBuf::from(device));
            }
        }
        in_use
    }

    /// Whether the block device `name` (sysfs folder `dir`) is mounted, swap, or held by
    /// another device (LVM, dm-crypt, RAID).
    fn holds(&self, name: &str, dir: &Path) -> bool {
        let mounted = read_trimmed(&dir.join("dev")).is_some_and(|n| self.numbers.contains(&n))
            || self.paths.contains(&Path::new("/dev").join(name));
        let held = std::fs::read_dir(dir.join("holders"))
            .is_ok_and(|mut holders| holders.next().is_some());
        mounted || held
    }
}

/// USB sticks in `sysfs` (normally `/sys`) that the system does not use (`in_use`), then
/// the extra devices that exist.
pub fn scan(sysfs: &Path, in_use: &InUse, extra_devices: &[PathBuf]) -> Vec<StickDevice> {
    let mut sticks = Vec::new();
    let block = sysfs.join("class/block");
    let mut disks: Vec<String> = std::fs::read_dir(&block)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|name| is_scsi_disk(name))
                .collect()
        })
        .unwrap_or_default();
    disks.sort();
    for disk in disks {
        let disk_dir = block.join(&disk);
        let on_usb = std::fs::canonicalize(&disk_dir)
            .map(|path| path.to_string_lossy().contains("/usb"))
            .unwrap_or(false);
        if !on_usb {
            continue;
        }
        let description = describe(&disk_dir);
        let partitions: Vec<String> = std::fs::read_dir(&disk_dir)
            .map(|entries| {
                let mut names: Vec<String> = entries
                    .flatten()
                    .filter(|e| e.path().join("partition").exists())
                    .filter_map(|e| e.file_name().into_string().ok())
                    .collect();
                names.sort();
                names
            })
            .unwrap_or_default();
        // A stick without a partition table carries its file system on the whole disk.
        // The whole disk is the system's if any part of it is (a USB SSD the Pi boots from:
        // its unmounted partitions are no backup stick either).
        let system_disk = in_use.holds(&disk, &disk_dir)
            || partitions
                .iter()
                .any(|part| in_use.holds(part, &disk_dir.join(part)));
        if system_disk {
            continue;
        }
        let names = if partitions.is_empty() {
            vec![disk.clone()]
        } else {
            partitions
        };
        for name in names {
            let size_dir = if name == disk {
                disk_dir.clone()
            } else {
                disk_dir.join(&name)
            };
            let size_bytes = read_trimmed(&size_dir.join("size"))
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(0)
                * 512;
            if size_bytes == 0 {
                continue; // a card reader without a card
            }
            sticks.push(StickDevice {
                path: PathBuf::from("/dev").join(&name),
                name,
                description: description.clone(),
                size_bytes,
                is_folder: false,
            });
        }
    }
    for path in extra_devices {
        if path.exists() {
            // A symlink (tests plug a "stick" in by creating one) names the real device.
            let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
            let name = real
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let size_bytes = read_trimmed(&block.join(&name).join("size"))
                .and_then(|s| s.parse::<u64>().ok())
                .map(|sectors| sectors * 512)
                .unwrap_or(0);
            // A loop device with nothing attached has size 0.
            if size_bytes == 0 && !path.is_dir() {
                continue;
            }
            sticks.push(StickDevice {
                name,
                path: path.clone(),
                description: "test device".into(),
                size_bytes,
                is_folder: false,
            });
        }
    }
    sticks
}

/// The demo's stick: a folder, "plugged in" while it exists.
pub fn scan_folder(folder: &Path) -> Vec<StickDevice> {
    if folder.is_dir() {
        vec![StickDevice {
            name: "demo-stick".into(),
            path: folder.to_path_buf(),
            description: "a folder standing in for a USB stick".into(),
            size_bytes: crate::system::disk::space(folder)
                .map(|(total, _)| total)
                .unwrap_or(0),
            is_folder: true,
        }]
    } else {
        Vec::new()
    }
}

fn is_scsi_disk(name: &str) -> bool {
    name.strip_prefix("sd")
        .is_some_and(|rest| !rest.is_empty() && rest.chars().all(|c| c.is_ascii_lowercase()))
}

fn describe(disk_dir: &Path) -> String {
    let vendor = read_trimmed(&disk_dir.join("device/vendor")).unwrap_or_default();
    let model = read_trimmed(&disk_dir.join("device/model")).unwrap_or_default();
    format!("{vendor} {model}").trim().to_string()
}

fn read_trimmed(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

/// What the first bytes of a partition say it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Contents {
    /// A file system plugnode can use: the `mount -t` type and the volume label.
    Usable { fstype: &'static str, label: String },
    /// A file system plugnode does not write to (NTFS, …).
    Unsupported(String),
    /// Nothing at all: zeros. May be prepared after the user confirms.
    Empty,
    /// Something plugnode cannot name: never touched.
    Unknown,
}

/// How many bytes the probe reads at the start (and at each sample point).
pub const PROBE_LEN: usize = 64 * 1024;
/// Places across the device checked before calling it empty: a file system whose first
/// blocks were wiped still has data further on, and must never be offered for formatting.
const EMPTY_SAMPLES: u64 = 16;

/// Names the file system on `device` (needs read access to the device).
pub fn probe(device: &Path) -> std::io::Result<Contents> {
    use std::io::{Seek, SeekFrom};
    let mut file = std::fs::File::open(device)?;
    let head = read_up_to(&mut file, PROBE_LEN)?;
    let contents = identify(&head);
    if contents != Contents::Empty {
        return Ok(contents);
    }
    let size = file.seek(SeekFrom::End(0))?;
    for sample in 1..EMPTY_SAMPLES {
        file.seek(SeekFrom::Start(size / EMPTY_SAMPLES * sample))?;
        if read_up_to(&mut file, PROBE_LEN)?.iter().any(|b| *b != 0) {
            return Ok(Contents::Unknown);
        }
    }
    Ok(Contents::Empty)
}

fn read_up_to(file: &mut std::fs::File, len: usize) -> std::io::Result<Vec<u8>> {
    let mut bytes = vec![0u8; len];
    let mut read = 0;
    while read < bytes.len() {
        match file.read(&mut bytes[read..])? {
            0 => break,
            n => read += n,
        }
    }
    bytes.truncate(read);
    Ok(bytes)
}

/// Identifies a file system from its first bytes (superblocks and boot sectors).
pub fn identify(bytes: &[u8]) -> Contents {
    let at = |offset: usize, len: usize| bytes.get(offset..offset + len);
    let text = |offset: usize, len: usize| {
        at(offset, len)
            .map(|b| {
                String::from_utf8_lossy(b)
                    .trim_matches(['\0', ' '])
                    .to_string()
            })
            .unwrap_or_default()
    };
    if at(1080, 2) == Some(&[0x53, 0xEF]) {
        // ext2/3/4 share the magic; ext4 mounts all of them.
        return Contents::Usable {
            fstype: "ext4",
            label: text(1144, 16),
        };
    }
    let boot_signature = at(510, 2) == Some(&[0x55, 0xAA]);
    if at(3, 8) == Some(b"EXFAT   ") {
        return Contents::Usable {
            fstype: "exfat",
            label: String::new(),
        };
    }
    if at(3, 8) == Some(b"NTFS    ") {
        return Contents::Unsupported("NTFS".into());
    }
    if boot_signature && at(82, 8) == Some(b"FAT32   ") {
        return Contents::Usable {
            fstype: "vfat",
            label: text(71, 11),
        };
    }
    if boot_signature && (at(54, 8) == Some(b"FAT16   ") || at(54, 8) == Some(b"FAT12   ")) {
        return Contents::Usable {
            fstype: "vfat",
            label: text(43, 11),
        };
    }
    if at(0x8001, 5) == Some(b"CD001") {
        return Contents::Unsupported("ISO 9660 (a CD image)".into());
    }
    if bytes.iter().all(|b| *b == 0) {
        return Contents::Empty;
    }
    Contents::Unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_with_data_past_its_wiped_start_is_not_empty() {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("stick.img");
        let mut bytes = vec![0u8; 4 * 1024 * 1024];
        assert_eq!(probe_bytes(&image, &bytes), Contents::Empty);
        bytes[3 * 1024 * 1024 + 5] = 1;
        assert_eq!(probe_bytes(&image, &bytes), Contents::Unknown);
    }

    fn probe_bytes(path: &Path, bytes: &[u8]) -> Contents {
        std::fs::write(path, bytes).unwrap();
        probe(path).unwrap()
    }

    #[test]
    fn names_file_systems_from_their_first_bytes() {
        let mut ext4 = vec![0u8; 4096];
        ext4[1080] = 0x53;
        ext4[1081] = 0xEF;
        ext4[1144..1152].copy_from_slice(b"PLUGNODE");
        assert_eq!(
            identify(&ext4),
            Contents::Usable {
                fstype: "ext4",
                label: "PLUGNODE".into()
            }
        );

        let mut fat32 = vec![0u8; 4096];
        fat32[82..90].copy_from_slice(b"FAT32   ");
        fat32[71..82].copy_from_slice(b"BACKUP     ");
        fat32[510] = 0x55;
        fat32[511] = 0xAA;
        assert_eq!(
            identify(&fat32),
            Contents::Usable {
                fstype: "vfat",
                label: "BACKUP".into()
            }
        );

        let mut exfat = vec![1u8; 4096];
        exfat[3..11].copy_from_slice(b"EXFAT   ");
        assert!(matches!(
            identify(&exfat),
            Contents::Usable {
                fstype: "exfat",
                ..
            }
        ));

        let mut ntfs = vec![1u8; 4096];
        ntfs[3..11].copy_from_slice(b"NTFS    ");
        assert_eq!(identify(&ntfs), Contents::Unsupported("NTFS".into()));

        assert_eq!(identify(&vec![0u8; PROBE_LEN]), Contents::Empty);
        assert_eq!(identify(&vec![7u8; 4096]), Contents::Unknown);
    }

    /// A fake sysfs: a USB stick with a partition, the SD card, and a card reader slot.
    #[test]
    fn only_usb_disks_count() {
        let root = tempfile::tempdir().unwrap();
        let devices = root.path().join("devices");
        let block = root.path().join("class/block");
        std::fs::create_dir_all(&block).unwrap();
        let usb_disk = devices.join("platform/usb1/1-1/host0/target0/block/sda");
        std::fs::create_dir_all(usb_disk.join("sda1")).unwrap();
        std::fs::create_dir_all(usb_disk.join("device")).unwrap();
        std::fs::write(usb_disk.join("device/vendor"), "SanDisk \n").unwrap();
        std::fs::write(usb_disk.join("device/model"), "Cruzer Blade\n").unwrap();
        std::fs::write(usb_disk.join("size"), "31260672\n").unwrap();
        std::fs::write(usb_disk.join("sda1/partition"), "1\n").unwrap();
        std::fs::write(usb_disk.join("sda1/size"), "31258624\n").unwrap();
        std::os::unix::fs::symlink(&usb_disk, block.join("sda")).unwrap();
        let reader = devices.join("platform/usb2/2-1/host1/target1/block/sdb");
        std::fs::create_dir_all(&reader).unwrap();
        std::fs::write(reader.join("size"), "0\n").unwrap();
        std::os::unix::fs::symlink(&reader, block.join("sdb")).unwrap();
        let sd_card = devices.join("platform/mmc/block/mmcblk0");
        std::fs::create_dir_all(&sd_card).unwrap();
        std::fs::write(sd_card.join("size"), "62333952\n").unwrap();
        std::os::unix::fs::symlink(&sd_card, block.join("mmcblk0")).unwrap();
        let sata = devices.join("pci0000:00/ata1/host2/target2/block/sdc");
        std::fs::create_dir_all(&sata).unwrap();
        std::fs::write(sata.join("size"), "1000000\n").unwrap();
        std::os::unix::fs::symlink(&sata, block.join("sdc")).unwrap();

        let sticks = scan(root.path(), &InUse::default(), &[]);
        assert_eq!(sticks.len(), 1, "{sticks:?}");
        assert_eq!(sticks[0].name, "sda1");
        assert_eq!(sticks[0].path, PathBuf::from("/dev/sda1"));
        assert_eq!(sticks[0].description, "SanDisk Cruzer Blade");
        assert_eq!(sticks[0].size_bytes, 31258624 * 512);
        assert!(sticks[0].label().contains("SanDisk"));
    }

    /// A USB disk in a fake sysfs: `parts` are (name, "major:minor").
    fn usb_disk(root: &Path, bus: &str, disk: &str, number: &str, parts: &[(&str, &str)]) {
        let dir = root.join(format!("devices/platform/{bus}/host0/target0/block/{disk}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("size"), "1000000\n").unwrap();
        std::fs::write(dir.join("dev"), format!("{number}\n")).unwrap();
        for (part, number) in parts {
            std::fs::create_dir_all(dir.join(part).join("holders")).unwrap();
            std::fs::write(dir.join(part).join("partition"), "1\n").unwrap();
            std::fs::write(dir.join(part).join("size"), "900000\n").unwrap();
            std::fs::write(dir.join(part).join("dev"), format!("{number}\n")).unwrap();
        }
        let block = root.join("class/block");
        std::fs::create_dir_all(&block).unwrap();
        std::os::unix::fs::symlink(&dir, block.join(disk)).unwrap();
    }

    fn names(sticks: &[StickDevice]) -> Vec<&str> {
        sticks.iter().map(|s| s.name.as_str()).collect()
    }

    /// A Pi booting from a USB SSD (sda: boot and root mounted, a data partition not) with
    /// a backup stick (sdb) plugged in after it.
    #[test]
    fn a_usb_disk_the_system_uses_is_skipped_for_the_next_one() {
        let root = tempfile::tempdir().unwrap();
        usb_disk(
            root.path(),
            "usb1/1-1",
            "sda",
            "8:0",
            &[("sda1", "8:1"), ("sda2", "8:2"), ("sda3", "8:3")],
        );
        usb_disk(root.path(), "usb1/1-2", "sdb", "8:16", &[("sdb1", "8:17")]);
        let mountinfo = "\
22 1 8:2 / / rw,noatime shared:1 - ext4 /dev/root rw,errors=remount-ro
25 22 8:1 / /boot/firmware rw,relatime shared:12 - vfat /dev/sda1 rw,fmask=0077
40 22 0:36 / /tmp rw,nosuid shared:20 - tmpfs tmpfs rw
";
        let in_use = InUse::parse(mountinfo, "", None);
        let sticks = scan(root.path(), &in_use, &[]);
        assert_eq!(
            names(&sticks),
            ["sdb1"],
            "the SSD is skipped, the stick found"
        );

        // Known only by its source path (btrfs shows an anonymous 0:NN), or as swap.
        let by_path = InUse::parse("22 1 0:31 / / rw shared:1 - btrfs /dev/sda2 rw\n", "", None);
        assert_eq!(names(&scan(root.path(), &by_path, &[])), ["sdb1"]);
        let swap = InUse::parse(
            "",
            "Filename\tType\tSize\tUsed\tPriority\n/dev/sda3  partition\t1048572\t0\t-2\n",
            None,
        );
        assert_eq!(names(&scan(root.path(), &swap, &[])), ["sdb1"]);

        // Held by LVM or dm-crypt (root on /dev/mapper/…): in use too.
        let holder = root
            .path()
            .join("devices/platform/usb1/1-1/host0/target0/block/sda/sda2/holders/dm-0");
        std::fs::create_dir_all(&holder).unwrap();
        let sticks = scan(root.path(), &InUse::default(), &[]);
        assert_eq!(names(&sticks), ["sdb1"]);
        std::fs::remove_dir(&holder).unwrap();

        // The stick mounted at plugnode's own mount point is still plugnode's stick.
        let own = "\
22 1 8:2 / / rw,noatime shared:1 - ext4 /dev/root rw
50 22 8:17 / /media/plugnode/backup rw,nosuid - ext4 /dev/sdb1 rw
";
        let in_use = InUse::parse(own, "", Some(Path::new("/media/plugnode/backup")));
        assert_eq!(names(&scan(root.path(), &in_use, &[])), ["sdb1"]);
        // Mounted anywhere else, it is somebody else's business.
        let in_use = InUse::parse(own, "", Some(Path::new("/media/other")));
        assert!(scan(root.path(), &in_use, &[]).is_empty());
    }
}
