//! What a system version is (its release file, also inside each bundle) and whether a
//! checked bundle may be installed on this box.

use serde::{Deserialize, Serialize};
use std::path::Path;

/// The format of plugnode's data directory this build reads and writes. Raised only with a
/// migration; a version never runs on data of a newer format (see [`super::data_format`]).
pub const DATA_FORMAT: u32 = 1;

/// `release.json`: in each system slot (`/usr/lib/plugnode/release.json`) and in each
/// bundle (`plugnode-release.json`), written by `image/build.sh`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Release {
    pub version: String,
    /// Debian's name for the CPU architecture ("arm64").
    pub architecture: String,
    /// The newest data format this version reads and writes.
    pub data_format: u32,
    #[serde(default)]
    pub notes: String,
}

impl Release {
    /// This build, when the system has no release file (a developer's computer).
    pub fn of_this_build() -> Release {
        Release {
            version: env!("CARGO_PKG_VERSION").to_string(),
            architecture: this_architecture().to_string(),
            data_format: DATA_FORMAT,
            notes: String::new(),
        }
    }

    /// The running system's release file; this build's own facts when there is none.
    pub fn of_the_system(path: &Path) -> anyhow::Result<Release> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|err| {
                anyhow::anyhow!("the release file {} is not valid: {err}", path.display())
            }),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Self::of_this_build()),
            Err(err) => Err(anyhow::anyhow!(
                "cannot read the release file {}: {err}",
                path.display()
            )),
        }
    }
}

/// Debian's architecture name of this build.
pub fn this_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "arm64",
        "x86_64" => "amd64",
        "arm" => "armhf",
        other => other,
    }
}

/// What the root helper found in a bundle whose signature it verified.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct BundleInfo {
    pub compatible: String,
    pub version: String,
    #[serde(default)]
    pub description: Option<String>,
    /// The signing certificate's subject.
    pub signer: String,
    pub release: Release,
}

/// Why a signed, compatible bundle must still not be installed here. Each message says
/// that nothing changed and what to do.
pub fn refusal(bundle: &BundleInfo, box_data_format: u32) -> Option<String> {
    let release = &bundle.release;
    if release.architecture != this_architecture() {
        return Some(format!(
            "This bundle is for {} computers, and this box is {}: nothing was installed. \
             Download the bundle for the Raspberry Pi (arm64).",
            release.architecture,
            this_architecture()
        ));
    }
    if release.version != bundle.version {
        return Some(format!(
            "This bundle contradicts itself (version {} outside, {} inside): nothing was \
             installed. Download it again from plugnode's releases.",
            bundle.version, release.version
        ));
    }
    if release.data_format < box_data_format {
        return Some(format!(
            "Version {} is too old for this box's data (it reads data format {}, the box's \
             data is format {box_data_format}): installing it could lose channel state, so \
             nothing was installed. Install the version the box runs now, or a newer one.",
            release.version, release.data_format,
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle(version: &str, architecture: &str, data_format: u32) -> BundleInfo {
        BundleInfo {
            compatible: "plugnode-rpi-arm64".into(),
            version: version.into(),
            description: None,
            signer: "O = plugnode, CN = test".into(),
            release: Release {
                version: version.into(),
                architecture: architecture.into(),
                data_format,
                notes: "Fixes".into(),
            },
        }
    }

    #[test]
    fn a_bundle_for_this_box_and_its_data_is_accepted() {
        assert_eq!(
            refusal(&bundle("0.4.0", this_architecture(), DATA_FORMAT), 1),
            None
        );
        // A newer data format is fine: the new version migrates once it proved itself.
        assert_eq!(
            refusal(&bundle("0.4.0", this_architecture(), DATA_FORMAT + 1), 1),
            None
        );
    }

    #[test]
    fn another_architecture_is_refused() {
        let why = refusal(&bundle("0.4.0", "riscv64", 1), 1).unwrap();
        assert!(why.contains("for riscv64 computers"), "{why}");
        assert!(why.contains("nothing was installed"), "{why}");
    }

    #[test]
    fn a_data_format_downgrade_is_refused() {
        let why = refusal(&bundle("0.2.0", this_architecture(), 1), 2).unwrap();
        assert!(why.contains("data format 1"), "{why}");
        assert!(why.contains("format 2"), "{why}");
        assert!(why.contains("nothing was installed"), "{why}");
    }

    #[test]
    fn a_bundle_whose_versions_disagree_is_refused() {
        let mut odd = bundle("0.4.0", this_architecture(), 1);
        odd.release.version = "0.9.0".into();
        assert!(refusal(&odd, 1).unwrap().contains("contradicts itself"));
    }

    #[test]
    fn the_release_file_is_read_or_this_build_stands_in() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("release.json");
        assert_eq!(
            Release::of_the_system(&path).unwrap(),
            Release::of_this_build()
        );
        std::fs::write(
            &path,
            r#"{"version":"0.4.0","architecture":"arm64","data_format":1,"notes":"x"}"#,
        )
        .unwrap();
        assert_eq!(Release::of_the_system(&path).unwrap().version, "0.4.0");
        std::fs::write(&path, "{").unwrap();
        assert!(Release::of_the_system(&path).is_err());
    }
}
