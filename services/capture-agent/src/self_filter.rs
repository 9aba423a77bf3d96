//! Keeping the agent's own broker traffic out of the capture: the live filter is ANDed with
//! `not (host H and port P)` for every address of the broker host (a feedback loop otherwise:
//! each published batch would be captured and published again).

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, ToSocketAddrs};

use netpipe_runtime::broker::{BrokerUrl, Endpoint};

use crate::AgentError;

/// Every address the broker host may be reached at. `localhost` always includes 127.0.0.1
/// and ::1 (whatever /etc/hosts says).
pub fn broker_addresses(endpoint: &Endpoint) -> Result<BTreeSet<IpAddr>, AgentError> {
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
pub fn live_filter(filter: &str, broker_url: &BrokerUrl) -> Result<String, AgentError> {
    let Some(endpoint) = broker_url.endpoint() else {
        return Ok(filter.to_string());
    };
    let addresses = broker_addresses(endpoint)?;
    let hosts: Vec<String> = addresses.iter().map(|ip| format!("host {ip}")).collect();
    let exclusion = format!("not (({}) and port {})", hosts.join(" or "), endpoint.port);
    Ok(if filter.trim().is_empty() {
        exclusion
    } else {
        format!("({}) and {exclusion}", filter.trim())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> BrokerUrl {
        text.parse().unwrap()
    }

    #[test]
    fn the_broker_is_excluded_from_the_live_filter() {
        assert_eq!(
            live_filter("udp", &url("redis://127.0.0.1:6399")).unwrap(),
            "(udp) and not ((host 127.0.0.1) and port 6399)"
        );
        assert_eq!(
            live_filter("", &url("redis://localhost")).unwrap(),
            "not ((host 127.0.0.1 or host ::1) and port 6379)"
        );
        assert_eq!(live_filter("arp", &url("memory://t")).unwrap(), "arp");
        // libpcap accepts what we build.
        let filter = live_filter("tcp and ( port 22 )", &url("amqp://localhost")).unwrap();
        netpipe_runtime::capture::compile_filter(&filter, netpipe_runtime::capture::LinkType(1))
            .unwrap();
    }
}
