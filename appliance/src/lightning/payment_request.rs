//! What a user pastes or scans to pay, read in one place: the web page's decode and pay,
//! and the paired apps' invoices, all go through [`PaymentRequest::parse`], so whatever
//! the box shows before paying is what it pays.
//!
//! Accepted, each with surrounding whitespace and in any case a QR code carries:
//! - a BOLT11 invoice (`lnbc…`, `lntb…`, `lnbcrt…`) or a BOLT12 offer (`lno1…`);
//! - either behind `lightning:` (also `lightning://`);
//! - a BIP21 link, `bitcoin:ADDRESS?amount=…&lightning=…` (or `lno=…`, BIP 321): the
//!   Lightning part is paid, the on-chain address is not used.
//!
//! Anything else is a [`ParseError`] that says what to paste instead. Parsing never
//! panics: every cut is on a char boundary and the Lightning decoders see at most
//! [`MAX_TEXT_BYTES`].

use super::error::{ErrorKind, LightningError};
use ldk_node::bitcoin::Network;
use ldk_node::lightning::offers::offer::{Amount, Offer};
use ldk_node::lightning_invoice::{Bolt11Invoice, Bolt11InvoiceDescriptionRef, Currency};
use serde::Serialize;
use std::str::FromStr;

/// Longer than any invoice (BOLT11's bech32 stops at 7089 characters) or offer wrapped in
/// a BIP21 link; more is something else pasted by mistake.
pub const MAX_TEXT_BYTES: usize = 10_000;

/// A payment request the box can read.
#[derive(Clone, Debug)]
pub enum PaymentRequest {
    Bolt11(Bolt11Invoice),
    /// Boxed: an offer is three times an invoice's size.
    Bolt12(Box<Offer>),
}

/// Why a text is not something this box can pay, in words that say what to paste.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("There is nothing to pay: paste a Lightning invoice (lnbc…) or offer (lno…).")]
    Empty,
    #[error(
        "That text is {0} bytes long, longer than any invoice or offer: paste only the \
         Lightning invoice (lnbc…) or offer (lno…)."
    )]
    TooLong(usize),
    #[error(
        "That bitcoin: link has no Lightning invoice in it: ask for a Lightning invoice \
         (lnbc…) or offer (lno…), or send to its address on-chain (Withdraw)."
    )]
    OnChainOnly,
    #[error(
        "That is a Bitcoin address, not a Lightning invoice: paste a Lightning invoice \
         (lnbc…) or offer (lno…), or send to the address on-chain (Withdraw)."
    )]
    BitcoinAddress,
    #[error(
        "LNURL and Lightning addresses (name@domain) are not supported yet: ask the \
         recipient for a Lightning invoice (lnbc…) or offer (lno…)."
    )]
    Lnurl,
    #[error(
        "That is a BOLT12 invoice or invoice request (lni…/lnr…), which is not paid by \
         pasting: paste the offer (lno…) it came from."
    )]
    NotAnOffer,
    #[error(
        "That is not a valid Lightning invoice ({0}). Copy the whole invoice, starting with ln…"
    )]
    InvalidInvoice(String),
    #[error("That is not a valid Lightning offer ({0}). Copy the whole offer, starting with lno…")]
    InvalidOffer(String),
    #[error(
        "This offer asks for an amount in a currency other than bitcoin, which this box \
         cannot pay: ask for an offer or invoice in bitcoin."
    )]
    ForeignCurrency,
    #[error(
        "That is not a Lightning invoice or offer: paste an invoice (lnbc…) or an offer \
         (lno…), with or without lightning: in front."
    )]
    Unrecognised,
}

impl From<ParseError> for LightningError {
    fn from(err: ParseError) -> Self {
        LightningError::new(ErrorKind::InvalidInvoice, err.to_string())
    }
}

/// What a request asks for, as the page shows it before paying.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// "bolt11" or "bolt12".
    pub kind: &'static str,
    /// `None`: the payer chooses the amount.
    pub amount_msat: Option<u64>,
    pub description: Option<String>,
    pub expires_at: Option<u64>,
    pub expired: bool,
}

impl PaymentRequest {
    /// Reads what the user pasted or scanned (see the module's doc for the forms).
    pub fn parse(text: &str) -> Result<PaymentRequest, ParseError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(ParseError::Empty);
        }
        if text.len() > MAX_TEXT_BYTES {
            return Err(ParseError::TooLong(text.len()));
        }
        let text = match strip_prefix_ignoring_case(text, "bitcoin:") {
            Some(uri) => lightning_part_of_bip21(uri).ok_or(ParseError::OnChainOnly)?,
            None => text,
        };
        // Also inside a BIP21 link: some wallets repeat the scheme there.
        let text = match strip_prefix_ignoring_case(text, "lightning:") {
            Some(rest) => rest.strip_prefix("//").unwrap_or(rest).trim(),
            None => text,
        };
        parse_bare(text)
    }

    /// Refuses a request for another network than the box's: paying it could only fail.
    pub fn require_network(self, network: Network) -> Result<PaymentRequest, LightningError> {
        let wrong = |what: &str, theirs: &str| {
            LightningError::new(
                ErrorKind::InvalidInvoice,
                format!(
                    "This {what} is for {theirs}, but this box runs on {}: ask the recipient \
                     for one on {0}. Nothing was sent.",
                    network_name(network)
                ),
            )
        };
        match &self {
            PaymentRequest::Bolt11(invoice) => {
                if invoice.currency() != currency_of(network) {
                    return Err(wrong("invoice", currency_name(&invoice.currency())));
                }
            }
            PaymentRequest::Bolt12(offer) => {
                if !offer.supports_chain(network.chain_hash()) {
                    let theirs: Vec<&str> = offer
                        .chains()
                        .into_iter()
                        .map(|chain| {
                            Network::from_chain_hash(chain).map_or("another chain", network_name)
                        })
                        .collect();
                    return Err(wrong("offer", &theirs.join(" and ")));
                }
            }
        }
        Ok(self)
    }

    pub fn is_expired(&self) -> bool {
        match self {
            PaymentRequest::Bolt11(invoice) => invoice.is_expired(),
            PaymentRequest::Bolt12(offer) => offer.is_expired(),
        }
    }

    /// The fixed amount, or `None` when the payer chooses it.
    pub fn amount_msat(&self) -> Option<u64> {
        match self {
            PaymentRequest::Bolt11(invoice) => invoice.amount_milli_satoshis(),
            PaymentRequest::Bolt12(offer) => offer_amount_msat(offer),
        }
    }

    pub fn summary(&self) -> Summary {
        match self {
            PaymentRequest::Bolt11(invoice) => Summary {
                kind: "bolt11",
                amount_msat: self.amount_msat(),
                description: match invoice.description() {
                    Bolt11InvoiceDescriptionRef::Direct(d) => Some(d.to_string()),
                    Bolt11InvoiceDescriptionRef::Hash(_) => None,
                },
                expires_at: invoice.expires_at().map(|d| d.as_secs()),
                expired: invoice.is_expired(),
            },
            PaymentRequest::Bolt12(offer) => Summary {
                kind: "bolt12",
                amount_msat: self.amount_msat(),
                description: offer.description().map(|d| d.to_string()),
                expires_at: offer.absolute_expiry().map(|d| d.as_secs()),
                expired: offer.is_expired(),
            },
        }
    }
}

/// What an offer asks for in msat, `None` when the payer chooses (an amount in another
/// currency never gets this far: [`PaymentRequest::parse`] refuses it).
pub fn offer_amount_msat(offer: &Offer) -> Option<u64> {
    match offer.amount() {
        Some(Amount::Bitcoin { amount_msats }) => Some(amount_msats),
        Some(Amount::Currency { .. }) | None => None,
    }
}

/// An invoice or offer without any prefix, or what it is instead.
fn parse_bare(text: &str) -> Result<PaymentRequest, ParseError> {
    if text.is_empty() {
        return Err(ParseError::Empty);
    }
    let starts = |prefix: &str| strip_prefix_ignoring_case(text, prefix).is_some();
    if starts("lno") {
        let offer =
            Offer::from_str(text).map_err(|e| ParseError::InvalidOffer(format!("{e:?}")))?;
        if matches!(offer.amount(), Some(Amount::Currency { .. })) {
            return Err(ParseError::ForeignCurrency);
        }
        return Ok(PaymentRequest::Bolt12(Box::new(offer)));
    }
    if starts("lni") || starts("lnr") {
        return Err(ParseError::NotAnOffer);
    }
    if starts("lnurl") || text.contains('@') {
        return Err(ParseError::Lnurl);
    }
    if starts("ln") {
        return Bolt11Invoice::from_str(text)
            .map(PaymentRequest::Bolt11)
            .map_err(|e| ParseError::InvalidInvoice(e.to_string()));
    }
    if ldk_node::bitcoin::Address::from_str(text).is_ok() {
        return Err(ParseError::BitcoinAddress);
    }
    Err(ParseError::Unrecognised)
}

/// The Lightning parameter of a BIP21 link (after `bitcoin:`): `lightning=`, else `lno=`.
/// Parameter names are compared ignoring case, as wallets write them either way. Values
/// are not percent-decoded: invoices and offers are bech32, which needs no escaping.
fn lightning_part_of_bip21(uri: &str) -> Option<&str> {
    let (_address, query) = uri.split_once('?')?;
    let value_of = |name: &str| {
        query.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then_some(value.trim())
                .filter(|v| !v.is_empty())
        })
    };
    value_of("lightning").or_else(|| value_of("lno"))
}

/// `text` without `prefix` when it starts with it in any case (never cuts inside a char).
fn strip_prefix_ignoring_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// BOLT11's currency for a network (testnet3 and testnet4 share `tb`). Not
/// lightning-invoice's `From<Network>`: it has no testnet4 and asserts in debug builds.
fn currency_of(network: Network) -> Currency {
    match network {
        Network::Bitcoin => Currency::Bitcoin,
        Network::Testnet | Network::Testnet4 => Currency::BitcoinTestnet,
        Network::Signet => Currency::Signet,
        Network::Regtest => Currency::Regtest,
    }
}

fn currency_name(currency: &Currency) -> &'static str {
    match currency {
        Currency::Bitcoin => "mainnet",
        Currency::BitcoinTestnet => "testnet",
        Currency::Regtest => "regtest",
        Currency::Simnet => "simnet",
        Currency::Signet => "signet",
    }
}

fn network_name(network: Network) -> &'static str {
    match network {
        Network::Bitcoin => "mainnet",
        Network::Testnet => "testnet3",
        Network::Testnet4 => "testnet4",
        Network::Signet => "signet",
        Network::Regtest => "regtest",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ldk_node::bitcoin::hashes::{sha256, Hash};
    use ldk_node::bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey};
    use ldk_node::lightning::offers::offer::OfferBuilder;
    use ldk_node::lightning_invoice::InvoiceBuilder;
    use ldk_node::lightning_types::payment::PaymentSecret;
    use std::time::{Duration, SystemTime};

    fn key() -> SecretKey {
        SecretKey::from_slice(&[7u8; 32]).unwrap()
    }

    fn invoice_for(currency: Currency, amount_msat: Option<u64>, age: Duration) -> String {
        let secp = Secp256k1::new();
        let builder = InvoiceBuilder::new(currency)
            .description("coffee".into())
            .payment_hash(sha256::Hash::from_byte_array([1u8; 32]))
            .payment_secret(PaymentSecret([2u8; 32]))
            .timestamp(SystemTime::now() - age)
            .expiry_time(Duration::from_secs(3600))
            .min_final_cltv_expiry_delta(144);
        match amount_msat {
            Some(msat) => builder
                .amount_milli_satoshis(msat)
                .build_signed(|hash| secp.sign_ecdsa_recoverable(hash, &key())),
            None => builder.build_signed(|hash| secp.sign_ecdsa_recoverable(hash, &key())),
        }
        .unwrap()
        .to_string()
    }

    fn invoice() -> String {
        invoice_for(Currency::Regtest, Some(50_000_000), Duration::ZERO)
    }

    fn offer_for(network: Network, expiry: Option<Duration>) -> String {
        let pubkey = PublicKey::from_secret_key(&Secp256k1::new(), &key());
        let mut builder = OfferBuilder::new(pubkey)
            .chain(network)
            .amount_msats(21_000)
            .description("tips".into());
        if let Some(at) = expiry {
            builder = builder.absolute_expiry(at);
        }
        builder.build().unwrap().to_string()
    }

    fn offer() -> String {
        offer_for(Network::Regtest, None)
    }

    fn unix_now() -> Duration {
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
    }

    fn kind(text: &str) -> &'static str {
        match PaymentRequest::parse(text) {
            Ok(request) => request.summary().kind,
            Err(err) => panic!("{text:.60}: {err}"),
        }
    }

    #[test]
    fn invoices_and_offers_are_read_bare_prefixed_and_in_capitals() {
        let (invoice, offer) = (invoice(), offer());
        for text in [
            invoice.clone(),
            invoice.to_uppercase(),
            format!("lightning:{invoice}"),
            format!("LIGHTNING:{}", invoice.to_uppercase()),
            format!("Lightning:{invoice}"),
            format!("lightning://{invoice}"),
            format!("  \n\tlightning:{invoice}  \r\n"),
        ] {
            assert_eq!(kind(&text), "bolt11", "{text:.60}");
        }
        for text in [
            offer.clone(),
            offer.to_uppercase(),
            format!("lightning:{offer}"),
            format!("LIGHTNING:{}", offer.to_uppercase()),
            format!("Lightning:{offer}"),
            format!(" {offer}\n"),
        ] {
            assert_eq!(kind(&text), "bolt12", "{text:.60}");
        }
    }

    #[test]
    fn a_bip21_link_pays_its_lightning_part() {
        let (invoice, offer) = (invoice(), offer());
        let address = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080";
        for (text, expected) in [
            (
                format!("bitcoin:{address}?amount=0.0005&lightning={invoice}"),
                "bolt11",
            ),
            (
                format!(
                    "BITCOIN:{}?AMOUNT=0.0005&LIGHTNING={}",
                    address.to_uppercase(),
                    invoice.to_uppercase()
                ),
                "bolt11",
            ),
            (
                format!("Bitcoin:{address}?label=shop&Lightning={invoice}&amount=1"),
                "bolt11",
            ),
            (format!("bitcoin:{address}?lightning={offer}"), "bolt12"),
            (format!("bitcoin:?lno={offer}"), "bolt12"),
            (
                format!("bitcoin:{address}?lightning=LIGHTNING:{invoice}"),
                "bolt11",
            ),
        ] {
            assert_eq!(kind(&text), expected, "{text:.80}");
        }
        let request = PaymentRequest::parse(&format!("bitcoin:{address}?lightning={invoice}"));
        assert_eq!(request.unwrap().amount_msat(), Some(50_000_000));
    }

    #[test]
    fn what_is_not_an_invoice_says_what_to_paste_instead() {
        let address = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080";
        let cases = [
            ("", ParseError::Empty),
            ("  \n ", ParseError::Empty),
            ("lightning:", ParseError::Empty),
            ("hello", ParseError::Unrecognised),
            (address, ParseError::BitcoinAddress),
            (&format!("bitcoin:{address}?amount=1"), ParseError::OnChainOnly),
            (&format!("bitcoin:{address}"), ParseError::OnChainOnly),
            (&format!("bitcoin:{address}?lightning="), ParseError::OnChainOnly),
            ("LNURL1DP68GURN8GHJ7UM9WFMXJCM99E3K7MF0V9CXJ0M385EKVCENXC6R2C35XVUKXEFCV5MKVV34X5EKZD3EV56NYD3HXQURZEPEXEJXXEPNXSCRVWFNV9NXZCN9XQ6XYEFHVGCXXCMYXYMNSERXFQ5FNS", ParseError::Lnurl),
            ("satoshi@example.org", ParseError::Lnurl),
            ("lni1qqgsomething", ParseError::NotAnOffer),
        ];
        for (text, expected) in cases {
            let err = PaymentRequest::parse(text).unwrap_err();
            assert_eq!(err, expected, "{text:.60}");
            assert!(
                err.to_string().contains("lnbc…") || err.to_string().contains("lno…"),
                "{err}"
            );
        }
        for text in ["lnbcrt1notaninvoice", "LIGHTNING:lnbc1garbage"] {
            let err = PaymentRequest::parse(text).unwrap_err();
            assert!(
                matches!(err, ParseError::InvalidInvoice(_)),
                "{text}: {err:?}"
            );
            assert!(err
                .to_string()
                .starts_with("That is not a valid Lightning invoice"));
        }
        let err = PaymentRequest::parse("lno1garbage").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("That is not a valid Lightning offer"),
            "{err}"
        );
        // A cut invoice (the last characters missing from a copy) fails its checksum.
        let invoice = invoice();
        let err = PaymentRequest::parse(&invoice[..invoice.len() - 3]).unwrap_err();
        assert!(matches!(err, ParseError::InvalidInvoice(_)), "{err:?}");
    }

    #[test]
    fn non_ascii_huge_and_odd_texts_are_refused_without_panicking() {
        let huge = "lnbc1".to_string() + &"q".repeat(MAX_TEXT_BYTES);
        assert_eq!(
            PaymentRequest::parse(&huge).unwrap_err(),
            ParseError::TooLong(huge.len())
        );
        let megabyte = "é".repeat(1 << 19);
        assert!(matches!(
            PaymentRequest::parse(&megabyte),
            Err(ParseError::TooLong(_))
        ));
        // Multi-byte characters where prefixes are cut: must not split a char.
        let texts = [
            "é",
            "lightninг:lnbc1",
            "lightning:é",
            "bitcoin:é?lightning=é",
            "bitcoiné?lightning=lnbc1",
            "lé",
            "lnoé",
            "lnbc1é",
            "ｌｉｇｈｔｎｉｎｇ:lnbc1",
            "🙂🙂🙂🙂🙂🙂🙂🙂🙂🙂🙂",
            "\0\0\0",
            "bitcoin:?&&==&lightning",
            "bitcoin:?=",
            "lightning:bitcoin:x?lightning=lnbc1",
            "lno1+",
            "lno1+ +",
            "+lno1",
        ];
        for text in texts {
            let err = PaymentRequest::parse(text).unwrap_err();
            assert!(!err.to_string().is_empty(), "{text}");
        }
        // Non-ASCII around a good invoice is whitespace only when it is whitespace.
        let invoice = invoice();
        assert_eq!(kind(&format!("\u{3000}{invoice}\u{a0}")), "bolt11");
        assert!(PaymentRequest::parse(&format!("é{invoice}")).is_err());
    }

    #[test]
    fn the_summary_shows_amount_description_and_expiry() {
        let summary = PaymentRequest::parse(&invoice()).unwrap().summary();
        assert_eq!(summary.kind, "bolt11");
        assert_eq!(summary.amount_msat, Some(50_000_000));
        assert_eq!(summary.description.as_deref(), Some("coffee"));
        assert!(!summary.expired);
        assert!(summary.expires_at.unwrap() > unix_now().as_secs());
        let any = invoice_for(Currency::Regtest, None, Duration::ZERO);
        assert_eq!(PaymentRequest::parse(&any).unwrap().amount_msat(), None);
        let old = invoice_for(Currency::Regtest, Some(1000), Duration::from_secs(7200));
        assert!(PaymentRequest::parse(&old).unwrap().summary().expired);

        let summary = PaymentRequest::parse(&offer()).unwrap().summary();
        assert_eq!(
            summary,
            Summary {
                kind: "bolt12",
                amount_msat: Some(21_000),
                description: Some("tips".into()),
                expires_at: None,
                expired: false,
            }
        );
        let gone = offer_for(Network::Regtest, Some(unix_now() - Duration::from_secs(60)));
        let request = PaymentRequest::parse(&gone).unwrap();
        assert!(request.is_expired() && request.summary().expired);
    }

    #[test]
    fn a_request_for_another_network_is_refused_with_both_names() {
        let mainnet_invoice = invoice_for(Currency::Bitcoin, Some(1000), Duration::ZERO);
        let mainnet_offer = offer_for(Network::Bitcoin, None);
        for text in [mainnet_invoice, mainnet_offer] {
            let err = PaymentRequest::parse(&text)
                .unwrap()
                .require_network(Network::Regtest)
                .unwrap_err();
            assert_eq!(err.kind, ErrorKind::InvalidInvoice);
            assert!(
                err.message
                    .contains("is for mainnet, but this box runs on regtest"),
                "{}",
                err.message
            );
            assert!(err.message.contains("Nothing was sent"), "{}", err.message);
        }
        for text in [invoice(), offer()] {
            let request = PaymentRequest::parse(&text).unwrap();
            assert!(request.require_network(Network::Regtest).is_ok());
        }
        // testnet4 boxes pay `tb` invoices (BOLT11 has one currency for both testnets).
        let testnet = invoice_for(Currency::BitcoinTestnet, Some(1000), Duration::ZERO);
        let request = PaymentRequest::parse(&testnet).unwrap();
        assert!(request.require_network(Network::Testnet4).is_ok());
    }

    #[test]
    fn parse_errors_become_invalid_invoice_errors_with_the_same_words() {
        let err = LightningError::from(ParseError::BitcoinAddress);
        assert_eq!(err.kind, ErrorKind::InvalidInvoice);
        assert_eq!(err.message, ParseError::BitcoinAddress.to_string());
    }
}
