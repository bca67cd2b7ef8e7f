//! What a paired app is: its protocol, what it may do, its budget, and the checks on a new
//! one. Plain data; the store keeps it, the services act on it.

use super::budget;
use super::error::{PairingError, Result};
use crate::status::{unix_now, UnixTime};
use serde::{Deserialize, Serialize};

/// How the app talks to the box.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// Nostr Wallet Connect (NIP-47): Zeus, Alby Go, Amethyst, Damus, …
    Nwc,
    /// The LNDHub API: BlueWallet, Zeus.
    Lndhub,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Nwc => "nwc",
            Protocol::Lndhub => "lndhub",
        }
    }

    fn parse(text: &str) -> Option<Protocol> {
        match text {
            "nwc" => Some(Protocol::Nwc),
            "lndhub" => Some(Protocol::Lndhub),
            _ => None,
        }
    }

    /// How the screens name it.
    pub fn label(self) -> &'static str {
        match self {
            Protocol::Nwc => "NWC",
            Protocol::Lndhub => "LNDHub",
        }
    }
}

/// When a budget starts again. Periods are calendar periods in UTC (a daily budget renews
/// at midnight UTC, a weekly one on Monday, …), so "renews at" is the same for everyone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Renewal {
    Daily,
    Weekly,
    Monthly,
    Yearly,
    /// A total that never renews.
    Never,
}

impl Renewal {
    pub const NAMES: &'static str = "daily, weekly, monthly, yearly or never";

    pub fn as_str(self) -> &'static str {
        match self {
            Renewal::Daily => "daily",
            Renewal::Weekly => "weekly",
            Renewal::Monthly => "monthly",
            Renewal::Yearly => "yearly",
            Renewal::Never => "never",
        }
    }

    pub fn parse(text: &str) -> Option<Renewal> {
        match text {
            "daily" => Some(Renewal::Daily),
            "weekly" => Some(Renewal::Weekly),
            "monthly" => Some(Renewal::Monthly),
            "yearly" => Some(Renewal::Yearly),
            "never" => Some(Renewal::Never),
            _ => None,
        }
    }

    /// "per day", "in total", … for the screen and the page.
    pub fn per(self) -> &'static str {
        match self {
            Renewal::Daily => "per day",
            Renewal::Weekly => "per week",
            Renewal::Monthly => "per month",
            Renewal::Yearly => "per year",
            Renewal::Never => "in total",
        }
    }
}

/// Where a connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionState {
    /// May spend once someone presses KEY2 on the box.
    WaitingForKey,
    Active,
    /// KEY3 on the box, or nobody answered in time.
    Refused,
    Revoked,
    /// Past its expiry date.
    Expired,
}

impl ConnectionState {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            ConnectionState::WaitingForKey => "waiting_for_key",
            ConnectionState::Active => "active",
            ConnectionState::Refused => "refused",
            ConnectionState::Revoked => "revoked",
            ConnectionState::Expired => "expired",
        }
    }

    pub(super) fn parse(text: &str) -> ConnectionState {
        match text {
            "waiting_for_key" => ConnectionState::WaitingForKey,
            "active" => ConnectionState::Active,
            "refused" => ConnectionState::Refused,
            "expired" => ConnectionState::Expired,
            // Anything unknown is treated as the safest state.
            _ => ConnectionState::Revoked,
        }
    }
}

/// A paired app, as the store keeps it (no secret: for NWC the app's public key, for
/// LNDHub a hash of its password).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connection {
    pub id: String,
    /// The app's name as the user chose it ("Zeus", "Alby Go", …).
    pub app: String,
    pub protocol: Protocol,
    /// Receiving is always allowed; spending only with this.
    pub spend: bool,
    /// What it may spend per period (msat); 0 when it may not spend.
    pub budget_msat: u64,
    pub renewal: Renewal,
    /// The most one payment may take (amount + fee limit), msat.
    pub max_payment_msat: u64,
    pub expires_at: Option<UnixTime>,
    pub created_at: UnixTime,
    pub state: ConnectionState,
    pub last_used_at: Option<UnixTime>,
    /// NWC: the app's public key (hex).
    pub nwc_pubkey: Option<String>,
    /// LNDHub: the login.
    pub lndhub_login: Option<String>,
}

impl Connection {
    /// The state as of `now` (an active connection past its expiry is expired).
    pub fn state_at(&self, now: UnixTime) -> ConnectionState {
        match (self.state, self.expires_at) {
            (ConnectionState::Active | ConnectionState::WaitingForKey, Some(at)) if now >= at => {
                ConnectionState::Expired
            }
            (state, _) => state,
        }
    }

    /// Whether requests from this app are served now.
    pub fn is_usable(&self, now: UnixTime) -> bool {
        self.state_at(now) == ConnectionState::Active
    }

    /// "receive only" / "receive and spend".
    pub fn permissions_text(&self) -> &'static str {
        if self.spend {
            "receive and spend"
        } else {
            "receive only"
        }
    }

    /// "50 000 sat per day", "no spending".
    pub fn budget_text(&self) -> String {
        if !self.spend {
            return "no spending".into();
        }
        format!(
            "{} sat {}",
            group_digits(self.budget_msat / 1000),
            self.renewal.per()
        )
    }

    /// How the screens name the connection: "Zeus (NWC)".
    pub fn label(&self) -> String {
        format!("{} ({})", self.app, self.protocol.label())
    }
}

/// 50000 → "50 000" (a thin space would not survive the e-ink font).
pub fn group_digits(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

/// A new connection as the page (or a script) asks for it:
/// `{"app": "Zeus", "protocol": "nwc", "permissions": ["receive", "spend"],
///   "budget_sat": 50000, "renewal": "daily", "expires_at": null}`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewConnection {
    pub app: String,
    pub protocol: String,
    pub permissions: Vec<String>,
    #[serde(default)]
    pub budget_sat: Option<u64>,
    #[serde(default)]
    pub renewal: Option<String>,
    /// The most one payment may take; the whole budget when absent.
    #[serde(default)]
    pub max_payment_sat: Option<u64>,
    #[serde(default)]
    pub expires_at: Option<UnixTime>,
    /// The web password again: a box without keys asks for it before an app may spend.
    #[serde(default)]
    pub password: Option<crate::secret::Secret>,
}

/// A checked [`NewConnection`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionRequest {
    pub app: String,
    pub protocol: Protocol,
    pub spend: bool,
    pub budget_msat: u64,
    pub renewal: Renewal,
    pub max_payment_msat: u64,
    pub expires_at: Option<UnixTime>,
}

const MAX_APP_NAME_CHARS: usize = 40;
/// 21 million bitcoin, in sat: no budget can be larger.
const MAX_SAT: u64 = 21_000_000 * 100_000_000;

impl NewConnection {
    /// Checks every field; each error names the field and what is allowed.
    pub fn check(&self, now: UnixTime) -> Result<ConnectionRequest> {
        let app = self.app.trim();
        if app.is_empty() || app.chars().count() > MAX_APP_NAME_CHARS {
            return Err(PairingError::invalid(format!(
                "\"app\": give the app a name of 1 to {MAX_APP_NAME_CHARS} characters, e.g. \"Zeus\"."
            )));
        }
        if app.chars().any(char::is_control) {
            return Err(PairingError::invalid(
                "\"app\": the name may not contain control characters.",
            ));
        }
        let protocol = Protocol::parse(&self.protocol).ok_or_else(|| {
            PairingError::invalid(format!(
                "\"protocol\": {:?} is not a protocol: use \"nwc\" (Nostr Wallet Connect) or \
                 \"lndhub\".",
                self.protocol
            ))
        })?;
        let mut spend = false;
        let mut receive = false;
        for permission in &self.permissions {
            match permission.as_str() {
                "receive" => receive = true,
                "spend" => spend = true,
                other => {
                    return Err(PairingError::invalid(format!(
                        "\"permissions\": {other:?} is not a permission: use [\"receive\"] or \
                         [\"receive\", \"spend\"]."
                    )))
                }
            }
        }
        if !receive {
            return Err(PairingError::invalid(
                "\"permissions\": every connection may receive: use [\"receive\"] or \
                 [\"receive\", \"spend\"].",
            ));
        }
        let (budget_msat, renewal, max_payment_msat) = if spend {
            let budget = self.budget_sat.filter(|b| *b > 0).ok_or_else(|| {
                PairingError::invalid(
                    "\"budget_sat\": an app that may spend needs a budget above 0 sat.",
                )
            })?;
            if budget > MAX_SAT {
                return Err(PairingError::invalid(
                    "\"budget_sat\": that is more than 21 million bitcoin.",
                ));
            }
            let renewal_text = self.renewal.as_deref().unwrap_or("");
            let renewal = Renewal::parse(renewal_text).ok_or_else(|| {
                PairingError::invalid(format!(
                    "\"renewal\": {renewal_text:?} is not a period: use {}.",
                    Renewal::NAMES
                ))
            })?;
            let max_payment =
                match self.max_payment_sat {
                    None => budget,
                    Some(0) => {
                        return Err(PairingError::invalid(
                            "\"max_payment_sat\": give a limit above 0 sat, or leave it out.",
                        ))
                    }
                    Some(max) if max > budget => return Err(PairingError::invalid(
                        "\"max_payment_sat\": one payment cannot be larger than the whole budget.",
                    )),
                    Some(max) => max,
                };
            (budget * 1000, renewal, max_payment * 1000)
        } else {
            if self.budget_sat.is_some_and(|b| b > 0) || self.max_payment_sat.is_some() {
                return Err(PairingError::invalid(
                    "\"budget_sat\": a receive-only connection cannot spend, so it has no \
                     budget: leave it out, or add \"spend\" to the permissions.",
                ));
            }
            (0, Renewal::Never, 0)
        };
        if let Some(at) = self.expires_at {
            if at <= now {
                return Err(PairingError::invalid(
                    "\"expires_at\": that moment has passed: give a time in the future (Unix \
                     seconds) or null.",
                ));
            }
        }
        Ok(ConnectionRequest {
            app: app.to_string(),
            protocol,
            spend,
            budget_msat,
            renewal,
            max_payment_msat,
            expires_at: self.expires_at,
        })
    }
}

/// A connection as the page lists it: no secret, the budget in sat with what is used and
/// left in the current period.
#[derive(Clone, Debug, Serialize)]
pub struct ConnectionView {
    pub id: String,
    pub app: String,
    pub protocol: Protocol,
    pub permissions: Vec<&'static str>,
    pub state: ConnectionState,
    pub budget_sat: u64,
    pub renewal: Renewal,
    pub max_payment_sat: u64,
    /// Spent in the current period, plus payments still in flight.
    pub used_sat: u64,
    pub left_sat: u64,
    /// When the budget starts again (`None`: never).
    pub renews_at: Option<UnixTime>,
    pub expires_at: Option<UnixTime>,
    pub created_at: UnixTime,
    pub last_used_at: Option<UnixTime>,
}

impl ConnectionView {
    pub fn of(connection: &Connection, used_msat: u64) -> ConnectionView {
        let now = unix_now();
        let mut permissions = vec!["receive"];
        if connection.spend {
            permissions.push("spend");
        }
        ConnectionView {
            id: connection.id.clone(),
            app: connection.app.clone(),
            protocol: connection.protocol,
            permissions,
            state: connection.state_at(now),
            budget_sat: connection.budget_msat / 1000,
            renewal: connection.renewal,
            max_payment_sat: connection.max_payment_msat / 1000,
            used_sat: used_msat.div_ceil(1000),
            left_sat: connection.budget_msat.saturating_sub(used_msat) / 1000,
            renews_at: connection
                .spend
                .then(|| budget::next_renewal(connection.renewal, now))
                .flatten(),
            expires_at: connection.expires_at,
            created_at: connection.created_at,
            last_used_at: connection.last_used_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(permissions: &[&str]) -> NewConnection {
        NewConnection {
            app: "Zeus".into(),
            protocol: "nwc".into(),
            permissions: permissions.iter().map(|p| p.to_string()).collect(),
            budget_sat: Some(50_000),
            renewal: Some("daily".into()),
            max_payment_sat: None,
            expires_at: None,
            password: None,
        }
    }

    #[test]
    fn a_spending_connection_needs_a_budget_and_a_period() {
        let ok = new(&["receive", "spend"]).check(1000).unwrap();
        assert!(ok.spend);
        assert_eq!(ok.budget_msat, 50_000_000);
        assert_eq!(ok.max_payment_msat, 50_000_000);
        assert_eq!(ok.renewal, Renewal::Daily);

        let mut no_budget = new(&["receive", "spend"]);
        no_budget.budget_sat = None;
        let err = no_budget.check(1000).unwrap_err();
        assert!(err.message.contains("budget_sat"), "{}", err.message);

        let mut bad_period = new(&["receive", "spend"]);
        bad_period.renewal = Some("hourly".into());
        let err = bad_period.check(1000).unwrap_err();
        assert!(err.message.contains("\"renewal\""), "{}", err.message);
        assert!(err.message.contains("daily, weekly"), "{}", err.message);
    }

    #[test]
    fn bad_fields_are_named() {
        let mut unknown = new(&["receive", "steal"]);
        assert!(unknown.check(0).unwrap_err().message.contains("\"steal\""));
        unknown = new(&["spend"]);
        assert!(unknown
            .check(0)
            .unwrap_err()
            .message
            .contains("may receive"));
        let mut protocol = new(&["receive"]);
        protocol.protocol = "lnurl".into();
        assert!(protocol
            .check(0)
            .unwrap_err()
            .message
            .contains("\"protocol\""));
        let mut empty = new(&["receive"]);
        empty.app = "   ".into();
        assert!(empty.check(0).unwrap_err().message.contains("\"app\""));
        let mut past = new(&["receive"]);
        past.budget_sat = None;
        past.expires_at = Some(10);
        assert!(past.check(20).unwrap_err().message.contains("expires_at"));
        let mut too_big = new(&["receive", "spend"]);
        too_big.max_payment_sat = Some(60_000);
        assert!(too_big
            .check(0)
            .unwrap_err()
            .message
            .contains("max_payment_sat"));
    }

    #[test]
    fn receive_only_has_no_budget() {
        let mut receive = new(&["receive"]);
        assert!(receive
            .check(0)
            .unwrap_err()
            .message
            .contains("receive-only"));
        receive.budget_sat = None;
        receive.renewal = None;
        let ok = receive.check(0).unwrap();
        assert!(!ok.spend);
        assert_eq!(ok.budget_msat, 0);
    }

    #[test]
    fn an_expired_connection_is_not_usable() {
        let connection = Connection {
            id: "a".into(),
            app: "Zeus".into(),
            protocol: Protocol::Nwc,
            spend: true,
            budget_msat: 1000,
            renewal: Renewal::Never,
            max_payment_msat: 1000,
            expires_at: Some(100),
            created_at: 0,
            state: ConnectionState::Active,
            last_used_at: None,
            nwc_pubkey: None,
            lndhub_login: None,
        };
        assert!(connection.is_usable(99));
        assert!(!connection.is_usable(100));
        assert_eq!(connection.state_at(100), ConnectionState::Expired);
        assert_eq!(connection.budget_text(), "1 sat in total");
    }

    #[test]
    fn digits_are_grouped_by_three() {
        assert_eq!(group_digits(0), "0");
        assert_eq!(group_digits(999), "999");
        assert_eq!(group_digits(50_000), "50 000");
        assert_eq!(group_digits(1_234_567), "1 234 567");
    }
}
