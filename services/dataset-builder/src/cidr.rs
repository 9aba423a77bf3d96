//! Networks of label rules: ipnet's `IpNet`, plus the bare-address form the rules accept.

use std::net::IpAddr;

pub use ipnet::IpNet;

/// `10.0.0.0/8`, `fd00::/8`, or a bare address (a /32 or /128 network).
pub fn parse_net(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    let (addr, prefix) = text.split_once('/').unwrap_or((text, ""));
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| format!("`{text}` is not an IP address or CIDR network"))?;
    if !text.contains('/') {
        return Ok(IpNet::from(addr));
    }
    let max = if addr.is_ipv4() { 32 } else { 128 };
    prefix
        .parse::<u8>()
        .ok()
        .and_then(|prefix| IpNet::new(addr, prefix).ok())
        .ok_or_else(|| format!("`{text}`: prefix length must be 0..={max}"))
}

/// The address in a CSV cell, if it holds one.
pub fn parse_ip(cell: &[u8]) -> Option<IpAddr> {
    std::str::from_utf8(cell).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn v4_networks() {
        let net = parse_net("10.0.2.0/24").unwrap();
        assert!(net.contains(&ip("10.0.2.15")));
        assert!(!net.contains(&ip("10.0.3.1")));
        assert!(!net.contains(&ip("::1")));
        assert!(parse_net("0.0.0.0/0").unwrap().contains(&ip("8.8.8.8")));
        let host = parse_net("127.0.0.1").unwrap();
        assert!(host.contains(&ip("127.0.0.1")));
        assert!(!host.contains(&ip("127.0.0.2")));
        // Host bits after the prefix are allowed, as before: the network is what counts.
        assert!(
            parse_net("10.0.2.7/24")
                .unwrap()
                .contains(&ip("10.0.2.200"))
        );
        assert!(parse_net("10.0.0.0/33").is_err());
        assert!(parse_net("10.0.0/8").is_err());
    }

    #[test]
    fn v6_networks() {
        let net = parse_net(" fd00::/8 ").unwrap();
        assert!(net.contains(&ip("fd12::1")));
        assert!(!net.contains(&ip("fe80::1")));
        assert!(parse_net("::/0").unwrap().contains(&ip("::1")));
        assert!(parse_ip(b"fd00::5").is_some_and(|a| net.contains(&a)));
        assert!(parse_ip(b"not an ip").is_none());
    }
}
