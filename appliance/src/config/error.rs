//! Config errors that say which key, which line, and what is allowed.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "no config file at {}. Copy the documented example (appliance/plugnode.example.toml \
         in the source, /usr/share/doc/plugnode/plugnode.example.toml on the image) there \
         and edit it, or pass --config PATH",
        path.display()
    )]
    NotFound { path: PathBuf },

    #[error("cannot read config file {}: {source}", path.display())]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The file is not valid TOML, or a key is unknown or has the wrong type.
    #[error("{}", describe_parse_error(path, *line, key.as_deref(), message))]
    Parse {
        path: PathBuf,
        /// 1-based; 0 when the parser could not say.
        line: usize,
        /// The dotted key, e.g. `bitcoind.prune_mib`, when known.
        key: Option<String>,
        message: String,
    },

    /// Every key parsed, but a value is not allowed (alone or together with others).
    #[error("config key `{key}`: {message}")]
    Invalid { key: String, message: String },
}

impl ConfigError {
    pub(super) fn from_toml(
        origin: &Path,
        text: &str,
        key: Option<String>,
        err: &toml::de::Error,
    ) -> ConfigError {
        let line = err
            .span()
            .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1)
            .unwrap_or(0);
        // serde_path_to_error names the root "."; that says nothing to a user.
        let key = key.filter(|k| !k.is_empty() && k != ".");
        ConfigError::Parse {
            path: origin.to_path_buf(),
            line,
            key,
            message: friendlier(err.message()),
        }
    }

    /// The dotted key this error is about, when there is one.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Parse { key, .. } => key.as_deref(),
            ConfigError::Invalid { key, .. } => Some(key),
            _ => None,
        }
    }
}

fn describe_parse_error(path: &Path, line: usize, key: Option<&str>, message: &str) -> String {
    let mut out = path.display().to_string();
    if line > 0 {
        out.push_str(&format!(", line {line}"));
    }
    if let Some(key) = key {
        out.push_str(&format!(", key `{key}`"));
    }
    out.push_str(": ");
    out.push_str(message);
    out
}

/// serde speaks of "fields" and "variants"; the config file has keys and values.
fn friendlier(message: &str) -> String {
    message
        .trim()
        .replace("unknown field", "unknown key")
        .replace("unknown variant", "unknown value")
        .replace("expected one of", "allowed:")
        .replace("missing field", "missing key")
        .replace("expected u16", "expected a whole number from 0 to 65535")
        .replace("expected u32", "expected a whole number")
        .replace("expected u64", "expected a whole number")
}
