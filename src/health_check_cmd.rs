//! `netpipe health-check`: GET an ops URL and exit 0 only on a 2xx answer.
//! The container image's HEALTHCHECK runs it, so the slim runtime image needs no curl; it speaks
//! just enough HTTP/1.1 over a plain TCP socket for the services' own ops endpoints.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;

/// Variables naming a service's ops address, first set wins (the publisher has its own name).
// OPS_ADDR first, as the services read it; the publisher's old name after it.
const OPS_ADDR_VARS: &[&str] = &["OPS_ADDR", "PUBLISHER_OPS_ADDR"];

#[derive(Debug, Clone, Args)]
pub struct HealthCheckArgs {
    /// URL to probe, `http://HOST:PORT/PATH` [default: /health on the address in
    /// PUBLISHER_OPS_ADDR or OPS_ADDR, with 0.0.0.0 and [::] probed on loopback].
    #[arg(env = "HEALTHCHECK_URL")]
    pub url: Option<String>,
    /// Give up after this many milliseconds (connect, and again for the answer).
    #[arg(long, default_value_t = 3000)]
    pub timeout_ms: u64,
}

/// Exit 0 for a 2xx answer; 1 for any other status, a refused connection or a timeout.
pub fn run(args: &HealthCheckArgs) -> anyhow::Result<ExitCode> {
    let url = match &args.url {
        Some(url) => url.clone(),
        None => url_from_env(|name| std::env::var(name).ok())?,
    };
    let timeout = Duration::from_millis(args.timeout_ms.max(1));
    let status = get_status(&url, timeout).with_context(|| format!("GET {url}"))?;
    if (200..300).contains(&status) {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("netpipe health-check: GET {url} answered {status}");
        Ok(ExitCode::FAILURE)
    }
}

/// `http://ADDR/health` for the first ops address variable that is set.
pub fn url_from_env(var: impl Fn(&str) -> Option<String>) -> anyhow::Result<String> {
    for name in OPS_ADDR_VARS {
        let Some(value) = var(name) else { continue };
        let value = value.trim();
        if value.is_empty() || value.eq_ignore_ascii_case("off") {
            bail!("{name} is {value:?}: this service runs no ops server to check");
        }
        // host:port, a host name included (OPS_ADDR's one meaning, see docs/operations.md).
        let addr: SocketAddr = std::net::ToSocketAddrs::to_socket_addrs(value)
            .ok()
            .and_then(|mut addrs| addrs.next())
            .with_context(|| format!("{name}={value:?} is not HOST:PORT"))?;
        return Ok(format!("http://{}/health", probe_addr(addr)));
    }
    bail!("no URL given and neither OPS_ADDR nor PUBLISHER_OPS_ADDR is set")
}

/// A wildcard listen address is reached on loopback.
fn probe_addr(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V4(v4) if v4.ip().is_unspecified() => {
            SocketAddr::from(([127, 0, 0, 1], v4.port()))
        }
        SocketAddr::V6(v6) if v6.ip().is_unspecified() => {
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, v6.port()))
        }
        other => other,
    }
}

/// The status code of `GET url`.
fn get_status(url: &str, timeout: Duration) -> anyhow::Result<u16> {
    let Some(rest) = url.strip_prefix("http://") else {
        bail!("only http:// URLs are supported");
    };
    let (authority, path) = match rest.find('/') {
        Some(slash) => rest.split_at(slash),
        None => (rest, "/"),
    };
    let addr = authority
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {authority:?} (HOST:PORT)"))?
        .next()
        .with_context(|| format!("{authority:?} resolves to no address"))?;
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes())?;
    // The status line is all we need: "HTTP/1.1 200 OK".
    let mut head = [0u8; 64];
    let mut len = 0;
    while len < head.len() && !head[..len].contains(&b'\n') {
        let n = stream.read(&mut head[len..])?;
        if n == 0 {
            break;
        }
        len += n;
    }
    parse_status_line(&head[..len])
}

fn parse_status_line(head: &[u8]) -> anyhow::Result<u16> {
    let text = String::from_utf8_lossy(head);
    let line = text.lines().next().unwrap_or_default();
    let mut parts = line.split_whitespace();
    match (parts.next(), parts.next().map(str::parse::<u16>)) {
        (Some(version), Some(Ok(status))) if version.starts_with("HTTP/") => Ok(status),
        _ => bail!("not an HTTP answer: {line:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_address_variables_become_loopback_health_urls() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(
            url_from_env(env(&[("OPS_ADDR", "0.0.0.0:9101")])).unwrap(),
            "http://127.0.0.1:9101/health"
        );
        assert_eq!(
            url_from_env(env(&[
                ("OPS_ADDR", "[::]:9103"),
                ("PUBLISHER_OPS_ADDR", "1.2.3.4:1")
            ]))
            .unwrap(),
            "http://[::1]:9103/health"
        );
        assert!(url_from_env(env(&[("PUBLISHER_OPS_ADDR", "off")])).is_err());
        assert!(url_from_env(env(&[("OPS_ADDR", "nonsense")])).is_err());
        assert!(url_from_env(env(&[])).is_err());
    }

    #[test]
    fn status_lines_parse_and_garbage_is_an_error() {
        assert_eq!(parse_status_line(b"HTTP/1.1 503 Service").unwrap(), 503);
        assert_eq!(parse_status_line(b"HTTP/1.0 200 OK\r\n").unwrap(), 200);
        assert!(parse_status_line(b"SSH-2.0-OpenSSH").is_err());
        assert!(parse_status_line(b"").is_err());
    }
}
