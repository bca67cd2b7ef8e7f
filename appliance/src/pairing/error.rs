//! Errors of the pairing services: a stable kind each protocol turns into its own code
//! (NIP-47 codes, LNDHub codes, HTTP statuses), and a message that says what to do.

use crate::lightning::{ErrorKind as LightningKind, LightningError};
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    InvalidInput,
    NotFound,
    /// Over the budget or the per-payment maximum: nothing was sent.
    QuotaExceeded,
    /// The connection may not do this (e.g. spend on a receive-only connection).
    Restricted,
    /// Unknown, revoked, refused or expired connection.
    Unauthorized,
    /// The box itself must confirm (a key press, or the web password on boxes without keys).
    NeedsConfirmation,
    /// The Lightning node said no; its kind says why.
    Lightning(LightningKind),
    Internal,
}

#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct PairingError {
    pub kind: ErrorKind,
    pub message: String,
}

impl PairingError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        PairingError {
            kind,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unauthorized, message)
    }
}

impl From<LightningError> for PairingError {
    fn from(err: LightningError) -> Self {
        PairingError::new(ErrorKind::Lightning(err.kind), err.message)
    }
}

impl From<rusqlite::Error> for PairingError {
    fn from(err: rusqlite::Error) -> Self {
        PairingError::internal(format!("the connection store failed: {err}"))
    }
}

pub type Result<T> = std::result::Result<T, PairingError>;
