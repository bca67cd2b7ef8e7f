//! Disk and memory sizes, read from the kernel.

use std::io;
use std::path::Path;

/// Size and free space (for an unprivileged user) of the file system holding `path`.
pub fn space(path: &Path) -> io::Result<(u64, u64)> {
    let stats = nix::sys::statvfs::statvfs(path).map_err(io::Error::from)?;
    let fragment = stats.fragment_size() as u64;
    Ok((
        stats.blocks() as u64 * fragment,
        stats.blocks_available() as u64 * fragment,
    ))
}

/// Bytes held by the files under `dir` (not following symlinks); 0 when it does not exist.
pub fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => dir_size(&entry.path()),
            Ok(meta) if meta.is_file() => meta.len(),
            _ => 0,
        })
        .sum()
}

/// Total RAM, from sysinfo(2): the unit hides `/proc/meminfo` (`ProcSubset=pid`).
pub fn total_memory() -> io::Result<u64> {
    Ok(nix::sys::sysinfo::sysinfo()?.ram_total())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ram_size_is_the_kernels_mem_total() {
        // What /proc/meminfo says (readable here, not under the unit's ProcSubset=pid).
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
        let kib: u64 = meminfo
            .lines()
            .find_map(|line| line.strip_prefix("MemTotal:"))
            .and_then(|rest| rest.trim().strip_suffix("kB"))
            .and_then(|kib| kib.trim().parse().ok())
            .unwrap();
        assert_eq!(total_memory().unwrap(), kib * 1024);
    }

    #[test]
    fn sizes_a_tree_and_its_disk() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("blocks")).unwrap();
        std::fs::write(dir.path().join("blocks/blk0.dat"), vec![0u8; 1000]).unwrap();
        std::fs::write(dir.path().join("x"), b"12345").unwrap();
        assert_eq!(dir_size(dir.path()), 1005);
        assert_eq!(dir_size(&dir.path().join("missing")), 0);
        let (total, free) = space(dir.path()).unwrap();
        assert!(total >= free && total > 0);
    }
}
