//! `OPS_ADDR`, with one meaning in every service: `off` or empty disables the ops endpoints,
//! anything else is `host:port` (an IP literal or a host name, resolved at start-up).

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

/// Where /health, /ready and /metrics listen, or nowhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpsAddr {
    Off,
    /// `host:port` as given; [`OpsAddr::resolve`] turns it into a socket address.
    At(String),
}

#[derive(Debug, thiserror::Error)]
pub enum OpsAddrError {
    #[error("OPS_ADDR {0:?}: expected host:port, or `off`")]
    Syntax(String),
    #[error("OPS_ADDR {addr:?}: {reason}")]
    Resolve { addr: String, reason: String },
}

impl OpsAddr {
    /// An address on the loopback interface with a port the kernel picks (tests, embedding).
    pub fn ephemeral() -> Self {
        OpsAddr::At("127.0.0.1:0".into())
    }

    /// The socket address to listen on (`None` = off); a host name is looked up once.
    pub async fn resolve(&self) -> Result<Option<SocketAddr>, OpsAddrError> {
        let OpsAddr::At(text) = self else {
            return Ok(None);
        };
        if let Ok(addr) = text.parse::<SocketAddr>() {
            return Ok(Some(addr));
        }
        let mut found =
            tokio::net::lookup_host(text.as_str())
                .await
                .map_err(|e| OpsAddrError::Resolve {
                    addr: text.clone(),
                    reason: e.to_string(),
                })?;
        found.next().map(Some).ok_or_else(|| OpsAddrError::Resolve {
            addr: text.clone(),
            reason: "the name has no address".into(),
        })
    }
}

impl FromStr for OpsAddr {
    type Err = OpsAddrError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let text = value.trim();
        if text.is_empty() || text.eq_ignore_ascii_case("off") {
            return Ok(OpsAddr::Off);
        }
        // host:port with a numeric port; the host is checked when resolved.
        let valid = text
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !valid {
            return Err(OpsAddrError::Syntax(text.to_string()));
        }
        Ok(OpsAddr::At(text.to_string()))
    }
}

impl fmt::Display for OpsAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpsAddr::Off => f.write_str("off"),
            OpsAddr::At(addr) => f.write_str(addr),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn off_empty_literal_and_names() {
        assert_eq!("off".parse::<OpsAddr>().unwrap(), OpsAddr::Off);
        assert_eq!(" ".parse::<OpsAddr>().unwrap(), OpsAddr::Off);
        assert_eq!(
            "OFF".parse::<OpsAddr>().unwrap().resolve().await.unwrap(),
            None
        );
        let literal: OpsAddr = "127.0.0.1:9101".parse().unwrap();
        assert_eq!(
            literal.resolve().await.unwrap(),
            Some(SocketAddr::from(([127, 0, 0, 1], 9101)))
        );
        let v6: OpsAddr = "[::1]:0".parse().unwrap();
        assert!(v6.resolve().await.unwrap().is_some());
        let name: OpsAddr = "localhost:9103".parse().unwrap();
        assert_eq!(name.resolve().await.unwrap().map(|a| a.port()), Some(9103));
        for bad in ["9101", "host:", ":80", "a:b", "1.2.3.4:70000"] {
            assert!(bad.parse::<OpsAddr>().is_err(), "{bad}");
        }
    }
}
