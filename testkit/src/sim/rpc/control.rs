//! Control and network methods (Core's `rpc/server.cpp`, `rpc/net.cpp`). The sim has no
//! P2P networking: no peers, no connections.

use super::json::amount;
use super::{get_int, Params, RpcResult};
use crate::sim::log::unix_now;
use crate::sim::node::Node;
use crate::sim::{CLIENT_NAME, CLIENT_VERSION, CLIENT_VERSION_STRING, PROTOCOL_VERSION};
use serde_json::{json, Value};

pub fn stop(node: &Node, params: &Params) -> RpcResult {
    node.request_shutdown();
    if !params.is_null(0) {
        let wait: i32 = get_int(params.get(0))?;
        std::thread::sleep(std::time::Duration::from_millis(wait.max(0) as u64));
    }
    Ok(json!(format!("{CLIENT_NAME} stopping")))
}

pub fn uptime(node: &Node, _: &Params) -> RpcResult {
    Ok(json!(unix_now().saturating_sub(node.start_time)))
}

pub fn ping(_node: &Node, _: &Params) -> RpcResult {
    Ok(Value::Null)
}

pub fn getconnectioncount(_node: &Node, _: &Params) -> RpcResult {
    Ok(json!(0))
}

pub fn getpeerinfo(_node: &Node, _: &Params) -> RpcResult {
    Ok(json!([]))
}

/// The user agent Core would announce: `/Satoshi:30.0.0(regtest-sim; comments)/`.
pub fn subversion(uacomments: &[String]) -> String {
    let mut comments = vec!["regtest-sim".to_string()];
    comments.extend(uacomments.iter().cloned());
    format!("/Satoshi:{CLIENT_VERSION_STRING}({})/", comments.join("; "))
}

pub fn getnetworkinfo(node: &Node, _: &Params) -> RpcResult {
    // A pruned node does not advertise NODE_NETWORK.
    let (services, names): (u64, Vec<&str>) = if node.settings.prune_mib > 0 {
        (0x0c08, vec!["WITNESS", "NETWORK_LIMITED", "P2P_V2"])
    } else {
        (
            0x0c09,
            vec!["NETWORK", "WITNESS", "NETWORK_LIMITED", "P2P_V2"],
        )
    };
    let network = |name: &str, reachable: bool| {
        json!({
            "name": name,
            "limited": !reachable,
            "reachable": reachable,
            "proxy": "",
            "proxy_randomize_credentials": false,
        })
    };
    let policy = &node.settings.policy;
    Ok(json!({
        "version": CLIENT_VERSION,
        "subversion": subversion(&node.settings.uacomment),
        "protocolversion": PROTOCOL_VERSION,
        "localservices": format!("{services:016x}"),
        "localservicesnames": names,
        "localrelay": true,
        "timeoffset": 0,
        "networkactive": true,
        "connections": 0,
        "connections_in": 0,
        "connections_out": 0,
        "networks": [
            network("ipv4", true),
            network("ipv6", true),
            network("onion", false),
            network("i2p", false),
            network("cjdns", false),
        ],
        "relayfee": amount(policy.min_relay_feerate),
        "incrementalfee": amount(policy.incremental_relay_feerate),
        "localaddresses": [],
        "warnings": [],
    }))
}
