use super::*;
use std::collections::BTreeSet;

const EXAMPLE: &str = include_str!("../../plugnode.example.toml");

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("plugnode.toml"))
}

#[test]
fn the_example_file_is_the_defaults() {
    assert_eq!(parse(EXAMPLE).unwrap(), Config::default());
    assert_eq!(parse("").unwrap(), Config::default());
}

/// Every key the program knows appears in the example, active or commented out.
#[test]
fn the_example_documents_every_key() {
    let mut everything = Config::default();
    everything.data.chain_dir = Some("/x".into());
    everything.bitcoind.rpc_port = Some(1);
    everything.bitcoind.p2p_port = Some(1);
    everything.lightning.alias = Some("x".into());
    everything.web.initial_password_file = Some("/x".into());
    everything.pairing.advertise_host = Some("x".into());
    everything.lightning.lsp = Some(LspConfig {
        node_id: "02".repeat(33),
        address: "x:1".into(),
        token: Some("x".into()),
        name: Some("x".into()),
    });
    let known: toml::Table = toml::from_str(&toml::to_string(&everything).unwrap()).unwrap();

    let mut documented = BTreeSet::new();
    let mut section = String::new();
    for line in EXAMPLE.lines() {
        let line = line.trim_start_matches('#').trim();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_string();
        } else if let Some((key, _)) = line.split_once(" = ") {
            documented.insert(format!("{section}.{key}"));
        }
    }
    for (section, table) in known {
        for (key, value) in table.as_table().unwrap() {
            // A sub-table (`[lightning.lsp]`) documents its own keys.
            let keys: Vec<String> = match value.as_table() {
                Some(sub) => sub.keys().map(|k| format!("{section}.{key}.{k}")).collect(),
                None => vec![format!("{section}.{key}")],
            };
            for dotted in keys {
                assert!(
                    documented.contains(&dotted),
                    "{dotted} is missing from plugnode.example.toml"
                );
            }
        }
    }
}

#[test]
fn unknown_key_names_key_line_and_allowed_keys() {
    let err = parse("[bitcoind]\nnetwork = \"regtest\"\nprnue_mib = 600\n").unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, ConfigError::Parse { line: 3, .. }), "{text}");
    assert!(text.contains("prnue_mib"), "{text}");
    assert!(text.contains("unknown key"), "{text}");
    assert!(text.contains("prune_mib"), "allowed keys listed: {text}");
}

#[test]
fn unknown_section_is_refused() {
    let text = parse("[bitcoin]\nnetwork = \"regtest\"\n")
        .unwrap_err()
        .to_string();
    assert!(text.contains("line 1"), "{text}");
    assert!(text.contains("bitcoin"), "{text}");
    assert!(text.contains("bitcoind"), "allowed sections listed: {text}");
}

#[test]
fn wrong_type_names_key_and_line() {
    let err = parse("[web]\n\n[lightning]\nlisten_port = \"ninety\"\n").unwrap_err();
    let text = err.to_string();
    assert_eq!(err.key(), Some("lightning.listen_port"), "{text}");
    assert!(text.contains("line 4"), "{text}");
    assert!(text.contains("string"), "{text}");
}

#[test]
fn wrong_network_lists_the_allowed_ones() {
    let text = parse("[bitcoind]\nnetwork = \"testnet\"\n")
        .unwrap_err()
        .to_string();
    assert!(text.contains("bitcoind.network"), "{text}");
    assert!(
        text.contains("mainnet") && text.contains("testnet4") && text.contains("regtest"),
        "{text}"
    );
}

#[test]
fn negative_prune_is_refused_with_what_is_allowed() {
    let err = parse("[bitcoind]\nprune_mib = -5\n").unwrap_err();
    let text = err.to_string();
    assert_eq!(err.key(), Some("bitcoind.prune_mib"), "{text}");
    assert!(text.contains("line 2"), "{text}");
    assert!(text.contains("-5") && text.contains("auto"), "{text}");
}

#[test]
fn sizes_accept_auto_and_numbers() {
    let config = parse("[bitcoind]\nprune_mib = 0\ndbcache_mib = \"auto\"\n").unwrap();
    assert_eq!(config.bitcoind.prune_mib, SizeSetting::Mib(0));
    assert_eq!(config.bitcoind.dbcache_mib, SizeSetting::Auto);
    assert!(parse("[bitcoind]\nprune_mib = \"big\"\n").is_err());
}

#[test]
fn broken_toml_names_the_line() {
    let text = parse("[web]\nlisten = \n").unwrap_err().to_string();
    assert!(text.contains("line 2"), "{text}");
}

fn valid_config() -> Config {
    let mut config = Config::default();
    // Any executable will do for validation.
    config.bitcoind.binary = PathBuf::from("/bin/sh");
    config
}

#[test]
fn a_missing_binary_is_named_with_what_to_do() {
    let mut config = valid_config();
    config.bitcoind.binary = PathBuf::from("/nonexistent/bitcoind");
    let err = config.validate().unwrap_err();
    assert_eq!(err.key(), Some("bitcoind.binary"));
    let text = err.to_string();
    assert!(
        text.contains("/nonexistent/bitcoind") && text.contains("no such file"),
        "{text}"
    );

    let not_a_program = tempfile::NamedTempFile::new().unwrap();
    config.bitcoind.binary = not_a_program.path().to_path_buf();
    let text = config.validate().unwrap_err().to_string();
    assert!(text.contains("not executable"), "{text}");
}

#[test]
fn value_checks_name_the_key() {
    assert!(valid_config().validate().is_ok());

    type Change = Box<dyn Fn(&mut Config)>;
    let cases: Vec<(&str, Change)> = vec![
        (
            "bitcoind.prune_mib",
            Box::new(|c| c.bitcoind.prune_mib = SizeSetting::Mib(100)),
        ),
        (
            "bitcoind.dbcache_mib",
            Box::new(|c| c.bitcoind.dbcache_mib = SizeSetting::Mib(1)),
        ),
        (
            "bitcoind.extra_args",
            Box::new(|c| c.bitcoind.extra_args = vec!["-rpcbind=0.0.0.0".into()]),
        ),
        (
            "bitcoind.extra_args",
            Box::new(|c| c.bitcoind.extra_args = vec!["-nodisablewallet".into()]),
        ),
        (
            "bitcoind.extra_args",
            Box::new(|c| c.bitcoind.extra_args = vec!["maxconnections=3".into()]),
        ),
        (
            "bitcoind.stop_timeout_secs",
            Box::new(|c| c.bitcoind.stop_timeout_secs = 1),
        ),
        (
            "data.dir",
            Box::new(|c| c.data.dir = PathBuf::from("relative/dir")),
        ),
        (
            "lightning.alias",
            Box::new(|c| c.lightning.alias = Some("x".repeat(33))),
        ),
        (
            "display.key_pins",
            Box::new(|c| c.display.key_pins = [5, 6, 6, 19]),
        ),
        (
            "web.allowed_hosts",
            Box::new(|c| c.web.allowed_hosts = vec!["http://node.example.org".into()]),
        ),
        (
            "web.allowed_hosts",
            Box::new(|c| c.web.allowed_hosts = vec!["node.example.org:8080".into()]),
        ),
        (
            "web.allowed_hosts",
            Box::new(|c| c.web.allowed_hosts = vec!["".into()]),
        ),
    ];
    for (key, change) in cases {
        let mut config = valid_config();
        change(&mut config);
        let err = config.validate().unwrap_err();
        assert_eq!(err.key(), Some(key), "{err}");
    }

    let mut config = valid_config();
    config.bitcoind.extra_args = vec!["-maxconnections=20".into(), "-nodebuglogfile".into()];
    assert!(config.validate().is_ok());
    config.web.allowed_hosts = vec![
        "node.example.org".into(),
        "100.64.0.9".into(),
        "fd7a:115c::1".into(),
        "[fd7a:115c::2]".into(),
    ];
    assert!(config.validate().is_ok());
}

#[test]
fn extra_args_that_open_bitcoind_up_or_run_commands_are_refused_with_the_reason() {
    for (arg, reason) in [
        ("-rpcwhitelist=plugnode:getblock", "which RPC calls"),
        ("-rpcwhitelistdefault=0", "which RPC calls"),
        ("-blocknotify=curl http://x/%s", "shell command"),
        ("-walletnotify=sh -c x", "shell command"),
        ("-alertnotify=x", "shell command"),
        ("-startupnotify=x", "shell command"),
        ("-shutdownnotify=x", "shell command"),
        ("--zmqpubrawtx=tcp://0.0.0.0:28332", "network socket"),
        ("-zmqpubhashblockhwm=1000", "network socket"),
        ("-settings=/tmp/evil.json", "behind its back"),
        ("-nosettings", "behind its back"),
        ("-includeconf=/tmp/more.conf", "behind its back"),
        ("-regtest.rpcbind=0.0.0.0", "manages it"),
        ("-rpcallowip=0.0.0.0/0", "manages it"),
    ] {
        let mut config = valid_config();
        config.bitcoind.extra_args = vec!["-maxconnections=20".into(), arg.into()];
        let err = config.validate().unwrap_err();
        assert_eq!(err.key(), Some("bitcoind.extra_args"), "{arg}: {err}");
        let text = err.to_string();
        assert!(text.contains(arg) && text.contains(reason), "{arg}: {text}");
    }
    // Tuning the node stays the user's.
    let mut config = valid_config();
    config.bitcoind.extra_args = ["-listen=0", "-onlynet=onion", "-proxy=127.0.0.1:9050"]
        .map(String::from)
        .to_vec();
    assert!(config.validate().is_ok());
}

#[test]
fn a_missing_file_says_how_to_create_one() {
    let text = Config::load(Path::new("/nonexistent/plugnode.toml"))
        .unwrap_err()
        .to_string();
    assert!(text.contains("/nonexistent/plugnode.toml"), "{text}");
    assert!(text.contains("plugnode.example.toml"), "{text}");
}

#[test]
fn pairing_values_are_checked_and_named() {
    let check = |change: fn(&mut Config)| {
        let mut config = valid_config();
        change(&mut config);
        config.validate().unwrap_err().to_string()
    };
    let err = check(|c| c.pairing.relays = vec!["relay.example.com".into()]);
    assert!(
        err.contains("pairing.relays") && err.contains("wss://"),
        "{err}"
    );
    let err = check(|c| c.pairing.relays = vec!["wss:// spaced".into()]);
    assert!(err.contains("pairing.relays"), "{err}");
    let err = check(|c| c.pairing.relay_listen.set_port(0));
    assert!(err.contains("pairing.relay_listen"), "{err}");
    let err = check(|c| c.pairing.lndhub_listen = c.pairing.relay_listen);
    assert!(err.contains("pairing.lndhub_listen"), "{err}");
    let err = check(|c| c.pairing.advertise_host = Some("http://box".into()));
    assert!(err.contains("pairing.advertise_host"), "{err}");

    let mut config = valid_config();
    config.pairing.relays = vec![
        "wss://relay.example.com/v1".into(),
        "ws://10.0.0.2:7777".into(),
    ];
    config.pairing.advertise_host = Some("192.168.1.20".into());
    config.validate().unwrap();
    // Turned off, nothing of it is checked.
    config.pairing.enabled = false;
    config.pairing.relay_listen.set_port(0);
    config.validate().unwrap();
}

#[test]
fn a_liquidity_provider_is_checked_key_by_key() {
    let with_lsp = |node_id: &str, address: &str| {
        let mut config = valid_config();
        config.lightning.lsp = Some(LspConfig {
            node_id: node_id.into(),
            address: address.into(),
            token: None,
            name: None,
        });
        config.validate()
    };
    let good = format!("02{}", "ab".repeat(32));
    with_lsp(&good, "lsp.example.com:9735").unwrap();
    let err = with_lsp("02abc", "lsp.example.com:9735")
        .unwrap_err()
        .to_string();
    assert!(err.contains("lightning.lsp.node_id"), "{err}");
    let err = with_lsp(&good, "lsp.example.com").unwrap_err().to_string();
    assert!(
        err.contains("lightning.lsp.address") && err.contains("host:port"),
        "{err}"
    );
    let mut config = valid_config();
    config.lightning.max_lsp_fee_permille = 1001;
    let err = config.validate().unwrap_err().to_string();
    assert!(err.contains("lightning.max_lsp_fee_permille"), "{err}");
    let parsed =
        parse("[lightning.lsp]\nnode_id = \"03aa\"\naddress = \"a:1\"\nfee = 1\n").unwrap_err();
    assert_eq!(parsed.key(), Some("lightning.lsp.fee"));
}

#[test]
fn https_needs_its_own_port_and_old_configs_get_the_default() {
    // A config from before HTTPS (only `listen`) still loads, with HTTPS on 443.
    let config = parse("[web]\nlisten = \"0.0.0.0:80\"\n").unwrap();
    assert_eq!(config.web.https_listen, "0.0.0.0:443".parse().unwrap());

    let mut config = valid_config();
    config.web.https_listen = "0.0.0.0:80".parse().unwrap();
    let err = config.validate().unwrap_err();
    assert_eq!(err.key(), Some("web.https_listen"), "{err}");
    assert!(err.to_string().contains("own port"), "{err}");
    config.web.listen = "127.0.0.1:8080".parse().unwrap();
    config.web.https_listen = "0.0.0.0:8080".parse().unwrap();
    assert_eq!(
        config.validate().unwrap_err().key(),
        Some("web.https_listen")
    );
    // The same port on two different addresses, or two "any free port"s, are fine.
    config.web.https_listen = "127.0.0.2:8080".parse().unwrap();
    config.validate().unwrap();
    config.web.listen = "127.0.0.1:0".parse().unwrap();
    config.web.https_listen = "127.0.0.1:0".parse().unwrap();
    config.validate().unwrap();
}

#[test]
fn panel_names_round_trip() {
    for name in PanelKind::NAMES {
        assert_eq!(name.parse::<PanelKind>().unwrap().as_str(), name);
    }
    let err = "waveshare-7in5".parse::<PanelKind>().unwrap_err();
    assert!(err.to_string().contains("waveshare-2in7-v2"));
}
