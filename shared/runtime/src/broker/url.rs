//! `BrokerUrl`: a broker URL parsed once (with the `url` crate) into what the broker layer
//! needs: the backend, the legacy kombu variant, the endpoint, and a redacted form for logs.

use std::fmt;
use std::str::FromStr;

use super::BrokerError;

/// Which client talks to the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Redis: Streams, or a kombu list when the URL is `kombu+redis://`.
    Redis,
    /// RabbitMQ (AMQP 0-9-1).
    Amqp,
    /// The bounded in-process channel of `memory://NAME`.
    Memory,
}

/// Where a networked broker listens (for the capture's self-filter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    pub port: u16,
}

/// A parsed broker URL. `Display` shows it with any password replaced by `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    backend: Backend,
    /// `kombu+redis://`: the original's kombu envelope on a Redis list.
    kombu: bool,
    /// What the backend's client connects to (for kombu the inner `redis://` URL, db
    /// defaulted to 15); for memory, the channel name.
    target: String,
    endpoint: Option<Endpoint>,
    redacted: String,
    /// The URL as given.
    text: String,
}

impl BrokerUrl {
    pub fn parse(text: &str) -> Result<Self, BrokerError> {
        let redacted = redact(text);
        let bad = |reason: &str| BrokerError::BadUrl {
            url: redacted.clone(),
            reason: reason.to_string(),
        };
        // `url` would read `localhost:6379` as scheme `localhost`.
        let Some((scheme, rest)) = text.split_once("://") else {
            return Err(bad("missing scheme://"));
        };
        let (backend, kombu, default_port) = match scheme {
            "memory" => {
                let name = rest.trim_end_matches('/');
                if name.is_empty() {
                    return Err(bad("memory:// needs a name"));
                }
                return Ok(BrokerUrl {
                    backend: Backend::Memory,
                    kombu: false,
                    target: name.to_string(),
                    endpoint: None,
                    redacted,
                    text: text.to_string(),
                });
            }
            "redis" | "rediss" => (Backend::Redis, false, 6379),
            "kombu+redis" | "kombu+rediss" => (Backend::Redis, true, 6379),
            "amqp" => (Backend::Amqp, false, 5672),
            "amqps" => (Backend::Amqp, false, 5671),
            _ => return Err(BrokerError::UnsupportedScheme { url: redacted }),
        };
        let inner = scheme.trim_start_matches("kombu+");
        let parsed = url::Url::parse(&format!("{inner}://{rest}"))
            .map_err(|e| bad(&format!("{e} (expected {scheme}://host[:port][/…])")))?;
        let host = match parsed.host() {
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            Some(host) => host.to_string(),
            None => String::new(),
        };
        if host.is_empty() {
            return Err(bad("no host after scheme://"));
        }
        let endpoint = Endpoint {
            host,
            port: parsed.port().unwrap_or(default_port),
        };
        let target = if kombu {
            kombu_redis_url(inner, rest)
        } else {
            text.to_string()
        };
        Ok(BrokerUrl {
            backend,
            kombu,
            target,
            endpoint: Some(endpoint),
            redacted,
            text: text.to_string(),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// True for `kombu+redis://`: messages are the original's, one per packet, in kombu's
    /// envelope.
    pub fn is_kombu(&self) -> bool {
        self.kombu
    }

    /// Host and port; `None` for `memory://` (no network traffic).
    pub fn endpoint(&self) -> Option<&Endpoint> {
        self.endpoint.as_ref()
    }

    /// The URL the backend's client connects to (kombu: the inner redis URL, db 15 by
    /// default; memory: the channel name). Holds the password: never log it.
    pub(crate) fn target(&self) -> &str {
        &self.target
    }

    /// The same server without the kombu variant (`kombu+redis://h` -> `redis://h`): where
    /// messages that are not the original's (row batches) go.
    pub fn without_kombu(&self) -> BrokerUrl {
        match self.text.strip_prefix("kombu+") {
            Some(plain) => BrokerUrl::parse(plain).unwrap_or_else(|_| self.clone()),
            None => self.clone(),
        }
    }

    /// The URL with any password replaced by `***`.
    pub fn redacted(&self) -> &str {
        &self.redacted
    }

    /// The password in the URL, if any (scrubbed from client errors).
    pub(crate) fn password(&self) -> Option<String> {
        let parsed = url::Url::parse(&self.target).ok()?;
        let password = parsed.password()?;
        let decoded = percent_decode(password);
        (!decoded.is_empty()).then_some(decoded)
    }
}

impl FromStr for BrokerUrl {
    type Err = BrokerError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        BrokerUrl::parse(text)
    }
}

impl fmt::Display for BrokerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted)
    }
}

/// Debug shows the redacted form too: a config dump must not leak the password.
impl fmt::Debug for BrokerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BrokerUrl({})", self.redacted)
    }
}

/// `scheme://user:password@host…` with the password replaced by `***`; text the `url` crate
/// cannot read is returned as it is only when it holds no `user:…@`.
pub fn redact(text: &str) -> String {
    let Some((scheme, rest)) = text.split_once("://") else {
        return text.to_string();
    };
    // The authority ends at the first '/', '?' or '#'; its last '@' ends the userinfo.
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return text.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
        None => text.to_string(),
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// kombu's Redis transport defaults to db 0, but the original always used db 15.
fn kombu_redis_url(inner_scheme: &str, rest: &str) -> String {
    let (path_part, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    let (authority, db) = match path_part.split_once('/') {
        Some((a, db)) if !db.trim_matches('/').is_empty() => (a, db.trim_matches('/')),
        Some((a, _)) => (a, "15"),
        None => (path_part, "15"),
    };
    match query {
        Some(q) => format!("{inner_scheme}://{authority}/{db}?{q}"),
        None => format!("{inner_scheme}://{authority}/{db}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> BrokerUrl {
        BrokerUrl::parse(text).unwrap()
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("amqp://guest:secret@localhost:5672/%2f"),
            "amqp://guest:***@localhost:5672/%2f"
        );
        assert_eq!(
            redact("redis://localhost:6379/15"),
            "redis://localhost:6379/15"
        );
        assert_eq!(redact("redis://:pw@h:1"), "redis://:***@h:1");
        assert_eq!(redact("redis://u:p@ss@h:1/0"), "redis://u:***@h:1/0");
        assert_eq!(
            url("redis://u:p@ss@h:1/0").to_string(),
            "redis://u:***@h:1/0"
        );
        assert_eq!(
            format!("{:?}", url("amqp://g:secret@h/%2f")),
            "BrokerUrl(amqp://g:***@h/%2f)"
        );
        assert_eq!(
            url("redis://u:p%40ss@h:1/0").password().as_deref(),
            Some("p@ss")
        );
        assert_eq!(url("redis://h:1/0").password(), None);
    }

    #[test]
    fn bad_urls_are_clear_errors() {
        let err = |text: &str| BrokerUrl::parse(text).unwrap_err();
        assert!(matches!(err("localhost:6379"), BrokerError::BadUrl { .. }));
        assert!(matches!(
            err("mqtt://x"),
            BrokerError::UnsupportedScheme { .. }
        ));
        assert!(matches!(err("memory://"), BrokerError::BadUrl { .. }));
        assert!(matches!(err("redis://"), BrokerError::BadUrl { .. }));
        assert!(matches!(err("redis://:6379"), BrokerError::BadUrl { .. }));
        assert!(matches!(
            err("redis://h:notaport"),
            BrokerError::BadUrl { .. }
        ));
        assert!(matches!(
            err("amqp://user:pw@/vhost"),
            BrokerError::BadUrl { .. }
        ));
        assert!(!err("amqp://user:pw@/vhost").to_string().contains("pw"));
    }

    #[test]
    fn backends_and_endpoints() {
        let ep = |text: &str| url(text).endpoint().cloned().unwrap();
        assert_eq!(ep("redis://127.0.0.1:6399/0").port, 6399);
        assert_eq!(ep("redis://localhost").port, 6379);
        assert_eq!(ep("amqp://guest:pw@rabbit:5673/%2f").host, "rabbit");
        assert_eq!(ep("amqps://rabbit").port, 5671);
        assert_eq!(ep("kombu+redis://h/15").port, 6379);
        assert_eq!(
            ep("redis://[::1]:7000"),
            Endpoint {
                host: "::1".into(),
                port: 7000
            }
        );
        assert!(url("memory://x").endpoint().is_none());
        assert_eq!(url("memory://x/").target(), "x");
        assert_eq!(url("amqps://h").backend(), Backend::Amqp);
        assert_eq!(url("memory://x").backend(), Backend::Memory);
        let kombu = url("kombu+rediss://h");
        assert_eq!((kombu.backend(), kombu.is_kombu()), (Backend::Redis, true));
        assert!(!url("redis://h").is_kombu());
        assert_eq!(
            url("kombu+redis://:pw@h/2").without_kombu(),
            url("redis://:pw@h/2")
        );
    }

    #[test]
    fn kombu_urls_default_to_db_15() {
        let target = |text: &str| url(text).target().to_string();
        assert_eq!(
            target("kombu+redis://localhost:6379"),
            "redis://localhost:6379/15"
        );
        assert_eq!(
            target("kombu+redis://localhost:6379/"),
            "redis://localhost:6379/15"
        );
        assert_eq!(target("kombu+redis://h:1/3"), "redis://h:1/3");
        assert_eq!(target("kombu+rediss://:pw@h:1/3"), "rediss://:pw@h:1/3");
    }
}
