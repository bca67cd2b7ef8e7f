//! LNDHub's error answer, `{"error": true, "code": N, "message": "…"}`, with the codes of
//! the reference server (BlueWallet/LndHub, `controllers/api.js`, its `error…` helpers):
//!
//! | code | reference meaning                 | here                                         |
//! |------|-----------------------------------|----------------------------------------------|
//! | 1    | bad auth                          | wrong login, password or token; revoked, expired or unconfirmed connection |
//! | 2    | not enough balance                | over the app's budget, a receive-only app paying, channels too small |
//! | 4    | not a valid invoice               | unreadable, wrong network, expired           |
//! | 6    | something went wrong              | the connection store failed; `decodeinvoice` without `invoice` |
//! | 7    | LND failure                       | the Lightning node is not running (yet)      |
//! | 8    | bad arguments                     | missing or malformed fields, amounts, unknown routes |
//! | 9    | previous payment in transit       | a payment still on its way when we stop waiting |
//! | 10   | payment failed                    | no route, refused by the recipient, already paid |
//! | 11   | not accepting new users           | `/create`: logins are made on the box's web page |
//!
//! The reference answers every error with HTTP 200 and the apps read the body, so we do
//! too, except: "bad auth" is 401 (Zeus only recognises a wrong password on a status of 300
//! or more; BlueWallet reads the body whatever the status), 429 when logins are throttled,
//! and 404/405/413 for an unknown route, a wrong method, or a body too large. Never a 5xx:
//! a failure of ours is an answer with a code, not a crash.
//!
//! The message is ours and says what to do; only code 1 keeps the reference's exact
//! "bad auth", which the apps compare (BlueWallet logs in again on code 1; Zeus looks for
//! `"bad auth"` in the body).

use crate::lightning::ErrorKind as LightningKind;
use crate::pairing::error::{ErrorKind, PairingError};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;
use std::fmt;

pub const BAD_AUTH: u8 = 1;
pub const NOT_ENOUGH_BALANCE: u8 = 2;
pub const NOT_A_VALID_INVOICE: u8 = 4;
pub const SERVER_ERROR: u8 = 6;
pub const NODE_FAILURE: u8 = 7;
pub const BAD_ARGUMENTS: u8 = 8;
pub const IN_TRANSIT: u8 = 9;
pub const PAYMENT_FAILED: u8 = 10;
pub const NO_NEW_ACCOUNTS: u8 = 11;

/// An LNDHub error answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LndhubError {
    pub status: StatusCode,
    pub code: u8,
    pub message: String,
}

impl LndhubError {
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        LndhubError {
            status: StatusCode::OK,
            code,
            message: message.into(),
        }
    }

    /// The one answer to every authentication failure, so it tells a guesser nothing.
    pub fn bad_auth() -> Self {
        LndhubError {
            status: StatusCode::UNAUTHORIZED,
            code: BAD_AUTH,
            message: "bad auth".into(),
        }
    }

    /// Too many wrong passwords: still "bad auth" for the apps, with its own status.
    pub fn throttled() -> Self {
        LndhubError {
            status: StatusCode::TOO_MANY_REQUESTS,
            ..Self::bad_auth()
        }
    }

    pub fn bad_arguments(message: impl Into<String>) -> Self {
        Self::new(BAD_ARGUMENTS, message)
    }

    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    pub fn body(&self) -> String {
        json!({ "error": true, "code": self.code, "message": self.message }).to_string()
    }
}

impl fmt::Display for LndhubError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "LNDHub error {}: {}", self.code, self.message)
    }
}

impl ResponseError for LndhubError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        super::reply::json_text(self.status, self.body())
    }
}

/// A pairing error in LNDHub's codes. An authorization failure becomes the bare "bad auth"
/// (its reason is for the log, see [`super::routes`]).
impl From<PairingError> for LndhubError {
    fn from(error: PairingError) -> Self {
        let code = match error.kind {
            ErrorKind::Unauthorized | ErrorKind::NeedsConfirmation => return Self::bad_auth(),
            ErrorKind::QuotaExceeded
            | ErrorKind::Restricted
            | ErrorKind::Lightning(LightningKind::InsufficientFunds) => NOT_ENOUGH_BALANCE,
            ErrorKind::Lightning(LightningKind::InvalidInvoice | LightningKind::InvoiceExpired) => {
                NOT_A_VALID_INVOICE
            }
            // lnd answers a second payment of an invoice with a payment error ("invoice is
            // already paid"), which the reference reports as a failed payment.
            ErrorKind::Lightning(
                LightningKind::PaymentFailed
                | LightningKind::PeerUnreachable
                | LightningKind::AlreadyPaid,
            ) => PAYMENT_FAILED,
            ErrorKind::InvalidInput
            | ErrorKind::NotFound
            | ErrorKind::Lightning(LightningKind::InvalidInput) => BAD_ARGUMENTS,
            ErrorKind::Lightning(
                LightningKind::NotRunning
                | LightningKind::NoSeed
                | LightningKind::NeedsChannel
                | LightningKind::Internal,
            ) => NODE_FAILURE,
            ErrorKind::Internal | ErrorKind::Lightning(LightningKind::ChannelNotFound) => {
                SERVER_ERROR
            }
        };
        Self::new(code, error.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lightning::ErrorKind as L;

    fn code(kind: ErrorKind) -> (u8, StatusCode) {
        let error = LndhubError::from(PairingError::new(kind, "why and what to do"));
        (error.code, error.status)
    }

    #[test]
    fn pairing_errors_become_the_reference_codes() {
        assert_eq!(code(ErrorKind::Unauthorized), (1, StatusCode::UNAUTHORIZED));
        assert_eq!(code(ErrorKind::QuotaExceeded), (2, StatusCode::OK));
        assert_eq!(code(ErrorKind::Restricted), (2, StatusCode::OK));
        assert_eq!(code(ErrorKind::Lightning(L::InsufficientFunds)).0, 2);
        assert_eq!(code(ErrorKind::Lightning(L::InvalidInvoice)).0, 4);
        assert_eq!(code(ErrorKind::Lightning(L::InvoiceExpired)).0, 4);
        assert_eq!(code(ErrorKind::Internal).0, 6);
        assert_eq!(code(ErrorKind::Lightning(L::NotRunning)).0, 7);
        assert_eq!(code(ErrorKind::InvalidInput).0, 8);
        assert_eq!(code(ErrorKind::Lightning(L::AlreadyPaid)).0, 10);
        assert_eq!(code(ErrorKind::Lightning(L::PaymentFailed)).0, 10);
    }

    #[test]
    fn bad_auth_is_exactly_what_the_apps_compare() {
        let error = LndhubError::from(PairingError::unauthorized(
            "This connection was revoked on the box.",
        ));
        let body: serde_json::Value = serde_json::from_str(&error.body()).unwrap();
        assert_eq!(
            body,
            json!({"error": true, "code": 1, "message": "bad auth"})
        );
        assert!(error.status.as_u16() >= 300, "Zeus needs a status >= 300");
        assert_eq!(LndhubError::throttled().body(), error.body());
    }

    #[test]
    fn other_errors_keep_our_message_on_one_line() {
        let error = LndhubError::from(PairingError::new(
            ErrorKind::QuotaExceeded,
            "Only 10 sat of this app's budget are left.\nRaise it on the page.",
        ));
        let body = error.body();
        assert!(!body.contains('\n'), "{body}");
        let value: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(value["error"], true);
        assert_eq!(value["code"], 2);
        assert!(value["message"].as_str().unwrap().contains("budget"));
    }
}
