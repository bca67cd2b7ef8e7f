//! The format of plugnode's data directory, so that no version runs on data it does not
//! know. An update and a rollback share the data partition: a rolled-back version must
//! never start on data a newer version changed under it (LDK on state it misreads can
//! lose channels). So a version refuses data of a newer format, and a new version moves
//! the data to its format only once it has proven itself (never during its trial boot).

use std::io;
use std::path::Path;

/// The file in the data directory that holds the format, as decimal text.
pub const FILE_NAME: &str = "data-format";

#[derive(Debug, thiserror::Error)]
pub enum DataFormatError {
    #[error(
        "the data in {dir} was written by a newer plugnode (data format {stored}); this \
         version reads up to format {supported}. Install the newer version again (System → \
         Update) or restore the channel backup on a box that runs it; do not delete the data"
    )]
    Newer {
        dir: String,
        stored: u32,
        supported: u32,
    },
    #[error("cannot read {path}: {why}")]
    Unreadable { path: String, why: String },
}

/// The format of the data in `dir`: format 1 when the file is missing (data from before
/// the file existed, or a new box).
pub fn stored(dir: &Path) -> Result<u32, DataFormatError> {
    let path = dir.join(FILE_NAME);
    let unreadable = |why: String| DataFormatError::Unreadable {
        path: path.display().to_string(),
        why,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => text
            .trim()
            .parse()
            .map_err(|_| unreadable(format!("{:?} is not a format number", text.trim()))),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(1),
        Err(err) => Err(unreadable(err.to_string())),
    }
}

/// Refuses data this build cannot read.
pub fn check(dir: &Path, supported: u32) -> Result<u32, DataFormatError> {
    let stored = stored(dir)?;
    if stored > supported {
        return Err(DataFormatError::Newer {
            dir: dir.display().to_string(),
            stored,
            supported,
        });
    }
    Ok(stored)
}

/// Records that the data is now in `format` (after its migration ran), unless this boot is
/// a trial of a new version: then nothing is written, so the previous version can still
/// read everything if the trial fails. Never lowers the format.
pub fn record(dir: &Path, format: u32, trial: bool) -> io::Result<bool> {
    let stored = stored(dir).map_err(|err| io::Error::other(err.to_string()))?;
    if trial || stored >= format && dir.join(FILE_NAME).exists() {
        return Ok(false);
    }
    crate::fsutil::write_atomic(
        &dir.join(FILE_NAME),
        format!("{format}\n").as_bytes(),
        0o600,
    )?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_without_the_file_is_format_one() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(check(dir.path(), 1).unwrap(), 1);
    }

    #[test]
    fn data_of_a_newer_format_is_refused_with_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), "2\n").unwrap();
        let err = check(dir.path(), 1).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("data format 2"), "{text}");
        assert!(text.contains("reads up to format 1"), "{text}");
        assert!(text.contains("do not delete the data"), "{text}");
        assert_eq!(check(dir.path(), 2).unwrap(), 2);
    }

    #[test]
    fn a_garbled_file_is_an_error_not_format_one() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), "two").unwrap();
        assert!(matches!(
            check(dir.path(), 1),
            Err(DataFormatError::Unreadable { .. })
        ));
    }

    #[test]
    fn a_trial_boot_never_moves_the_format() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!record(dir.path(), 2, true).unwrap());
        assert_eq!(stored(dir.path()).unwrap(), 1);
        assert!(!dir.path().join(FILE_NAME).exists());
        // Once proven, it does; and a later, older build never lowers it.
        assert!(record(dir.path(), 2, false).unwrap());
        assert_eq!(stored(dir.path()).unwrap(), 2);
        assert!(!record(dir.path(), 1, false).unwrap());
        assert_eq!(stored(dir.path()).unwrap(), 2);
    }
}
