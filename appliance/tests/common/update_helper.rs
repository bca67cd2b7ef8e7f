//! A stand-in for the image's root update helper (`systemd/update-helper`): it speaks the
//! helper's protocol, judges uploaded bundles by their text, and records every request.

use super::*;
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The root helper's stand-in: answers `status` with `status`, judges uploaded bundles by
/// their text ("good <version> <arch> <data format>", "truncated", "unsigned", "other-key",
/// "armhf"), and records each request line.
pub struct FakeHelper {
    pub socket: PathBuf,
    requests: Arc<Mutex<Vec<String>>>,
}

impl FakeHelper {
    pub fn start(dir: &Path, data_dir: PathBuf, status: Value) -> FakeHelper {
        let socket = dir.join("update.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut line = String::new();
                BufReader::new(&stream).read_line(&mut line).unwrap();
                let line = line.trim().to_string();
                seen.lock().unwrap().push(line.clone());
                let answer = answer(&line, &data_dir, &status);
                let _ = stream.write_all(answer.as_bytes());
            }
        });
        FakeHelper { socket, requests }
    }

    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

fn answer(request: &str, data_dir: &Path, status: &Value) -> String {
    let (command, argument) = request.split_once(' ').unwrap_or((request, ""));
    match command {
        "status" => format!("ok {status}\n"),
        "check" => {
            assert_eq!(argument, "upload.raucb", "plugnode names its own file only");
            let text = std::fs::read_to_string(data_dir.join("update").join(argument))
                .unwrap_or_default();
            let words: Vec<&str> = text.split_whitespace().collect();
            match words.as_slice() {
                ["good", version, arch, format] => format!(
                    "ok {}\n",
                    serde_json::json!({
                        "compatible": "plugnode-rpi-arm64",
                        "version": version,
                        "description": null,
                        "signer": "O = plugnode, CN = plugnode test update key",
                        "release": {
                            "version": version,
                            "architecture": arch,
                            "data_format": format.parse::<u32>().unwrap(),
                            "notes": "Faster payments."
                        }
                    })
                ),
                ["truncated"] | ["unsigned"] => {
                    "error not-a-bundle Invalid bundle format: Signature size exceeds bundle size\n"
                        .into()
                }
                ["other-key"] => {
                    "error bad-signature signature verification failed: self-signed certificate\n"
                        .into()
                }
                ["armhf"] => "error incompatible plugnode-rpi-armhf\n".into(),
                // Anything else is what RAUC says of random bytes.
                _ => "error not-a-bundle Invalid bundle format\n".into(),
            }
        }
        "install" => "progress 0 Installing\nprogress 20 Checking bundle\nprogress 80 Copying image to rootfs.1\nprogress 100 Installing done.\nok B\n".into(),
        "mark-good" => "ok committed\n".into(),
        "give-up" => "ok rebooting\n".into(),
        _ => "error failed unknown request\n".into(),
    }
}

/// A box with updates on, its release file saying `version`, and `helper`.
pub fn update_box(dir: &Path, version: &str, helper_status: Value) -> (TestConfig, FakeHelper) {
    let mut config = TestConfig::new(dir);
    let helper = with_updates(&mut config, version, helper_status);
    (config, helper)
}

/// Turns updates on in `config`: its release file says `version`, its helper is a
/// [`FakeHelper`] answering `status` with `helper_status`.
pub fn with_updates(config: &mut TestConfig, version: &str, helper_status: Value) -> FakeHelper {
    std::fs::create_dir_all(&config.dir).unwrap();
    let release = config.dir.join("release.json");
    std::fs::write(
        &release,
        serde_json::json!({
            "version": version,
            "architecture": plugnode::update::release::this_architecture(),
            "data_format": 1,
            "notes": ""
        })
        .to_string(),
    )
    .unwrap();
    let helper = FakeHelper::start(&config.dir, config.data_dir(), helper_status);
    config.extra_toml += &format!(
        "[update]\nenabled = true\nhelper_socket = {:?}\nrelease_file = {release:?}\n",
        helper.socket
    );
    helper
}

/// What the helper says about a box that runs `version` from slot A, nothing pending.
pub fn plain_slots(version: &str) -> Value {
    serde_json::json!({
        "booted": "A", "default": "A", "trial": false,
        "slots": {"A": {"version": version, "state": "good"}},
        "last_failed_trial": null
    })
}
