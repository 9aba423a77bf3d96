//! HTTP calls to the AntiNex REST API: login, `POST /ml/`, `GET /mlresults/{id}/`.
//! Every request has a timeout; TLS is verified unless the operator supplies their own CA.

use std::path::Path;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};

use crate::config::Config;
use crate::error::PublisherError;
use crate::secret::{ExposeSecret, SecretString};

/// A finished HTTP exchange: status and body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Reply {
    /// The first 200 characters of the body, for logs and dead-letter reasons.
    pub fn excerpt(&self) -> String {
        excerpt(&self.body)
    }
}

pub fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out: String = text.chars().take(200).collect();
    if text.chars().nth(200).is_some() {
        out.push('…');
    }
    out
}

/// The request did not produce an HTTP answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TransportError {
    #[error("timed out")]
    Timeout,
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("{0}")]
    Other(String),
}

impl TransportError {
    pub fn label(&self) -> &'static str {
        match self {
            TransportError::Timeout => "timeout",
            TransportError::Connect(_) => "connect",
            TransportError::Other(_) => "error",
        }
    }
}

fn transport(e: reqwest::Error) -> TransportError {
    // Without the URL (it may hold a password) but with every cause: "error sending request"
    // alone hides whether DNS, TCP (refused) or TLS failed.
    let e = e.without_url();
    if e.is_timeout() {
        TransportError::Timeout
    } else if e.is_connect() {
        TransportError::Connect(netpipe_runtime::error_line(&e))
    } else {
        TransportError::Other(netpipe_runtime::error_line(&e))
    }
}

/// Checks ANTINEX_URL at start: `http://` or `https://` with a host. A URL without scheme
/// (`localhost:8010`) would otherwise fail every request, forever, as "builder error".
pub fn check_base_url(url: &str) -> Result<(), PublisherError> {
    let shown = netpipe_runtime::broker::redact_url(url);
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| PublisherError::Config(format!("ANTINEX_URL {shown}: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(PublisherError::Config(format!(
            "ANTINEX_URL {shown}: the scheme must be http:// or https://"
        )));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(PublisherError::Config(format!(
            "ANTINEX_URL {shown}: no host"
        )));
    }
    Ok(())
}

/// Why a login failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LoginError {
    /// The server answered, but not with a token (400 = wrong credentials).
    #[error("login refused with HTTP {status}: {excerpt}")]
    Refused { status: u16, excerpt: String },
    #[error("login request failed: {0}")]
    Transport(#[from] TransportError),
}

#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    /// `base` with any password replaced by `***`.
    shown: String,
    user: String,
    password: SecretString,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("base", &self.shown)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl Api {
    pub fn new(config: &Config) -> Result<Self, PublisherError> {
        let mut builder = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(config.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .tls_backend_rustls();
        builder = tls(builder, config)?;
        let http = builder
            .build()
            .map_err(|e| PublisherError::Tls(e.to_string()))?;
        check_base_url(&config.url)?;
        Ok(Api {
            http,
            base: config.base_url(),
            shown: netpipe_runtime::broker::redact_url(&config.base_url()),
            user: config.user.clone(),
            password: config.password.clone(),
        })
    }

    /// The base URL for logs: a password in it is `***`.
    pub fn redacted_base(&self) -> &str {
        &self.shown
    }

    /// `POST /api-token-auth/` with the configured credentials.
    pub async fn login(&self) -> Result<SecretString, LoginError> {
        #[derive(serde::Serialize)]
        struct Credentials<'a> {
            username: &'a str,
            password: &'a str,
        }
        #[derive(serde::Deserialize)]
        struct TokenReply {
            token: String,
        }
        let body = serde_json::to_vec(&Credentials {
            username: &self.user,
            password: self.password.expose_secret(),
        })
        .unwrap_or_default();
        let response = self
            .http
            .post(format!("{}/api-token-auth/", self.base))
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(transport)?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(transport)?;
        if status == 200
            && let Ok(reply) = serde_json::from_slice::<TokenReply>(&bytes)
        {
            return Ok(SecretString::from(reply.token));
        }
        if status >= 500 {
            return Err(TransportError::Other(format!("login answered HTTP {status}")).into());
        }
        Err(LoginError::Refused {
            status,
            excerpt: excerpt(&bytes),
        })
    }

    /// `POST /ml/` with a prepared body. The idempotency key lets a server that honours it
    /// (the stand-in does; the original API ignores unknown headers) drop a retried duplicate.
    pub async fn post_ml(
        &self,
        token: &SecretString,
        body: Vec<u8>,
        idempotency_key: &str,
    ) -> Result<Reply, TransportError> {
        let request = self
            .http
            .post(format!("{}/ml/", self.base))
            .header(CONTENT_TYPE, "application/json")
            .header(AUTHORIZATION, auth_header(token)?)
            .header("Idempotency-Key", idempotency_key)
            .body(body);
        self.exchange(request).await
    }

    /// `GET /mlresults/{id}/`.
    pub async fn get_result(
        &self,
        token: &SecretString,
        result_id: i64,
    ) -> Result<Reply, TransportError> {
        let request = self
            .http
            .get(format!("{}/mlresults/{result_id}/", self.base))
            .header(AUTHORIZATION, auth_header(token)?);
        self.exchange(request).await
    }

    async fn exchange(&self, request: reqwest::RequestBuilder) -> Result<Reply, TransportError> {
        let response = request.send().await.map_err(transport)?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(transport)?.to_vec();
        Ok(Reply { status, body })
    }
}

/// `JWT <token>`, marked sensitive so reqwest/hyper never print it.
fn auth_header(token: &SecretString) -> Result<HeaderValue, TransportError> {
    let mut value = HeaderValue::from_str(&format!("JWT {}", token.expose_secret()))
        .map_err(|_| TransportError::Other("the token is not a valid header value".into()))?;
    value.set_sensitive(true);
    Ok(value)
}

fn read(path: &Path) -> Result<Vec<u8>, PublisherError> {
    std::fs::read(path).map_err(|e| PublisherError::Tls(format!("{}: {e}", path.display())))
}

/// ANTINEX_CA_FILE (file or directory of PEMs) adds trusted roots. ANTINEX_CERT_FILE with
/// ANTINEX_KEY_FILE is a client certificate; the cert alone is a CA bundle, as in the original.
/// Unlike the original, verification stays on.
fn tls(
    mut builder: reqwest::ClientBuilder,
    config: &Config,
) -> Result<reqwest::ClientBuilder, PublisherError> {
    let mut roots = Vec::new();
    if let Some(ca) = &config.ca_file {
        if ca.is_dir() {
            let entries = std::fs::read_dir(ca)
                .map_err(|e| PublisherError::Tls(format!("{}: {e}", ca.display())))?;
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_file() {
                    roots.extend(pem_certs(&read(&path)?, &path)?);
                }
            }
        } else {
            roots.extend(pem_certs(&read(ca)?, ca)?);
        }
    }
    match (&config.cert_file, &config.key_file) {
        (Some(cert), Some(key)) => {
            let mut pem = read(cert)?;
            pem.push(b'\n');
            pem.extend(read(key)?);
            let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
                PublisherError::Tls(format!("client certificate {}: {e}", cert.display()))
            })?;
            builder = builder.identity(identity);
        }
        (Some(cert), None) => roots.extend(pem_certs(&read(cert)?, cert)?),
        (None, Some(_)) => {
            return Err(PublisherError::Tls(
                "ANTINEX_KEY_FILE needs ANTINEX_CERT_FILE".into(),
            ));
        }
        (None, None) => {}
    }
    for root in roots {
        builder = builder.add_root_certificate(root);
    }
    Ok(builder)
}

fn pem_certs(pem: &[u8], path: &Path) -> Result<Vec<reqwest::Certificate>, PublisherError> {
    reqwest::Certificate::from_pem_bundle(pem)
        .map_err(|e| PublisherError::Tls(format!("{}: {e}", path.display())))
}
