//! Errors of the Lightning API: a stable kind for the web page and screens, a message that
//! says what went wrong and what to do, and ldk-node's error kept for the logs.

use ldk_node::NodeError;
use serde::Serialize;

/// Stable error kinds (the web page keys its texts on these).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    NotRunning,
    NoSeed,
    InvalidInput,
    InvalidInvoice,
    InvoiceExpired,
    AlreadyPaid,
    InsufficientFunds,
    PaymentFailed,
    PeerUnreachable,
    ChannelNotFound,
    /// The channels cannot take this payment and no liquidity provider is configured.
    NoInboundCapacity,
    /// A liquidity provider could open a channel, but the owner has not agreed to use it.
    LspNotAgreed,
    /// Receiving this needs a just-in-time channel whose fee nobody approved yet
    /// (`lsp_fee_msat` says how much the provider keeps at most).
    NeedsChannel,
    Internal,
}

#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct LightningError {
    pub kind: ErrorKind,
    pub message: String,
    #[source]
    pub source: Option<NodeError>,
    /// For [`ErrorKind::NeedsChannel`]: the most the provider would keep.
    pub lsp_fee_msat: Option<u64>,
}

impl LightningError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        LightningError {
            kind,
            message: message.into(),
            source: None,
            lsp_fee_msat: None,
        }
    }

    /// Wraps an ldk-node error with what we were doing.
    pub fn node(doing: &str, error: NodeError) -> Self {
        let (kind, hint) = match error {
            NodeError::NotRunning => (ErrorKind::NotRunning, "the Lightning node is not running"),
            NodeError::ConnectionFailed => (
                ErrorKind::PeerUnreachable,
                "the other node did not answer: check its address and that it is online",
            ),
            NodeError::InsufficientFunds => (
                ErrorKind::InsufficientFunds,
                "not enough funds (on-chain funds must cover the amount, fees and the reserve \
                 kept for closing channels)",
            ),
            NodeError::DuplicatePayment => (
                ErrorKind::AlreadyPaid,
                "this invoice was already paid (or a payment for it is on its way); nothing \
                 was sent again",
            ),
            NodeError::InvalidInvoice => (ErrorKind::InvalidInvoice, "the invoice is not valid"),
            NodeError::InvalidOffer => (ErrorKind::InvalidInvoice, "the offer is not valid"),
            NodeError::InvalidAmount => (ErrorKind::InvalidInput, "the amount is not valid"),
            NodeError::InvalidNodeId | NodeError::InvalidPublicKey => {
                (ErrorKind::InvalidInput, "the node id is not valid")
            }
            NodeError::InvalidSocketAddress => (
                ErrorKind::InvalidInput,
                "the address is not valid: use host:port",
            ),
            NodeError::ChannelClosingFailed | NodeError::ChannelCreationFailed => {
                (ErrorKind::Internal, "the channel operation failed")
            }
            NodeError::PaymentSendingFailed => (ErrorKind::PaymentFailed, "sending failed"),
            // LDK builds an offer's blinded paths through peers; without one it cannot.
            NodeError::OfferCreationFailed => (
                ErrorKind::NoInboundCapacity,
                "an offer tells payers to reach this box through a peer, so it needs a \
                 channel with a peer that is online: open a channel first",
            ),
            _ => (ErrorKind::Internal, "the Lightning node reported an error"),
        };
        LightningError {
            kind,
            message: format!("{doing}: {hint} ({error})."),
            source: Some(error),
            lsp_fee_msat: None,
        }
    }
}

pub type Result<T> = std::result::Result<T, LightningError>;
