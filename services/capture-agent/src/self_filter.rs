//! Keeping the agent's own broker traffic out of the capture: the live filter is ANDed with
//! `not (host H and port P)` for every address of the broker host (a feedback loop otherwise:
//! each published batch would be captured and published again).

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, ToSocketAddrs};

use crate::AgentError;

/// Where the broker listens, from its URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerEndpoint {
    pub host: String,
    pub port: u16,
}

/// Host and port of a broker URL; `None` for `memory://` (no network traffic).
pub fn broker_endpoint(url: &str) -> Result<Option<BrokerEndpoint>, AgentError> {
    let bad = |reason: &str| AgentError::Config(format!("broker URL {}: {reason}", redact(url)));
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(bad("missing scheme:// (e.g. redis://127.0.0.1:6379)"));
    };
    let default_port = match scheme {
        "memory" => return Ok(None),
        "redis" | "rediss" | "kombu+redis" | "kombu+rediss" => 6379,
        "amqp" => 5672,
        "amqps" => 5671,
        other => return Err(bad(&format!("unsupported scheme {other}://"))),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = if let Some(bracketed) = host_port.strip_prefix('[') {
        // [v6]:port
        let Some((host, after)) = bracketed.split_once(']') else {
            return Err(bad("unterminated [ in IPv6 host"));
        };
        (host, after.strip_prefix(':'))
    } else {
        match host_port.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        }
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    let port = match port {
        None | Some("") => default_port,
        Some(p) => p
            .parse::<u16>()
            .map_err(|_| bad(&format!("invalid port {p:?}")))?,
    };
    Ok(Some(BrokerEndpoint {
        host: host.to_string(),
        port,
    }))
}

/// Every address the broker host may be reached at. `localhost` always includes 127.0.0.1
/// and ::1 (whatever /etc/hosts says).
pub fn broker_addresses(endpoint: &BrokerEndpoint) -> Result<BTreeSet<IpAddr>, AgentError> {
    let mut addresses = BTreeSet::new();
    if let Ok(ip) = endpoint.host.parse::<IpAddr>() {
        addresses.insert(ip);
        return Ok(addresses);
    }
    if endpoint.host.eq_ignore_ascii_case("localhost") {
        addresses.insert(IpAddr::V4(Ipv4Addr::LOCALHOST));
        addresses.insert(IpAddr::V6(Ipv6Addr::LOCALHOST));
    }
    match (endpoint.host.as_str(), endpoint.port).to_socket_addrs() {
        Ok(resolved) => addresses.extend(resolved.map(|a| a.ip())),
        Err(e) if addresses.is_empty() => {
            return Err(AgentError::Config(format!(
                "cannot resolve broker host {}: {e}",
                endpoint.host
            )));
        }
        Err(_) => {}
    }
    Ok(addresses)
}

/// `filter` ANDed with the exclusion of the broker's traffic (no exclusion for `memory://`).
pub fn live_filter(filter: &str, broker_url: &str) -> Result<String, AgentError> {
    let Some(endpoint) = broker_endpoint(broker_url)? else {
        return Ok(filter.to_string());
    };
    let addresses = broker_addresses(&endpoint)?;
    let hosts: Vec<String> = addresses.iter().map(|ip| format!("host {ip}")).collect();
    let exclusion = format!("not (({}) and port {})", hosts.join(" or "), endpoint.port);
    Ok(if filter.trim().is_empty() {
        exclusion
    } else {
        format!("({}) and {exclusion}", filter.trim())
    })
}

fn redact(url: &str) -> String {
    netpipe_runtime::broker::redact_url(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_from_urls() {
        let ep = |url| broker_endpoint(url).unwrap().unwrap();
        assert_eq!(ep("redis://127.0.0.1:6399/0").port, 6399);
        assert_eq!(ep("redis://localhost").port, 6379);
        assert_eq!(ep("amqp://guest:pw@rabbit:5673/%2f").host, "rabbit");
        assert_eq!(ep("amqps://rabbit").port, 5671);
        assert_eq!(ep("kombu+redis://h/15").port, 6379);
        let v6 = ep("redis://[::1]:7000");
        assert_eq!((v6.host.as_str(), v6.port), ("::1", 7000));
        assert!(broker_endpoint("memory://x").unwrap().is_none());
        assert!(broker_endpoint("localhost:6379").is_err());
        assert!(broker_endpoint("redis://:6379").is_err());
        assert!(broker_endpoint("redis://h:notaport").is_err());
        assert!(broker_endpoint("mqtt://h").is_err());
    }

    #[test]
    fn the_broker_is_excluded_from_the_live_filter() {
        assert_eq!(
            live_filter("udp", "redis://127.0.0.1:6399").unwrap(),
            "(udp) and not ((host 127.0.0.1) and port 6399)"
        );
        assert_eq!(
            live_filter("", "redis://localhost").unwrap(),
            "not ((host 127.0.0.1 or host ::1) and port 6379)"
        );
        assert_eq!(live_filter("arp", "memory://t").unwrap(), "arp");
        // libpcap accepts what we build.
        let filter = live_filter("tcp and ( port 22 )", "amqp://localhost").unwrap();
        netpipe_runtime::capture::compile_filter(&filter, netpipe_runtime::capture::LinkType(1))
            .unwrap();
    }
}
