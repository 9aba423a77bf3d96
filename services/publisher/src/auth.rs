//! The JWT: log in once, renew shortly before `exp`, log in again after a 401. One login at a
//! time; failed logins back off (wrong credentials never become a busy loop). Each login sets
//! the "antinex login" readiness condition.

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use netpipe_runtime::ops::Readiness;
use tokio_util::sync::CancellationToken;

use crate::api::{Api, LoginError};
use crate::metrics::PublisherMetrics;
use crate::probes::READY_LOGIN;
use crate::secret::{ExposeSecret, SecretString};
use netpipe_runtime::service::{Backoff, sleep_or_shutdown};

/// A token and the generation it belongs to (bumped at every login), so that many requests
/// failing with the same stale token cause one login, not one each.
#[derive(Debug, Clone)]
pub struct Token {
    pub value: SecretString,
    pub generation: u64,
}

#[derive(Debug, Default)]
struct State {
    token: Option<SecretString>,
    renew_at: Option<Instant>,
    generation: u64,
}

#[derive(Debug)]
pub struct Auth {
    api: Api,
    state: Mutex<State>,
    login: tokio::sync::Mutex<Backoff>,
    renew_before: Duration,
    metrics: PublisherMetrics,
    /// Unmet, with why, after a refused or failed login until the next success.
    readiness: Readiness,
    /// Wrong credentials are not transient: after refusals for this long the run stops.
    refused: RefusedLogins,
}

/// Refused logins in a row, and what to do when they last too long.
#[derive(Debug)]
struct RefusedLogins {
    give_up_after: Option<Duration>,
    since: Mutex<Option<Instant>>,
    /// Why the run was stopped (set once), for the caller's error.
    reason: Mutex<Option<String>>,
    /// Cancelled to stop the run.
    stop: CancellationToken,
}

#[derive(serde::Deserialize)]
struct Claims {
    exp: Option<f64>,
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Why /ready says the login is not working. Without the server's answer: a body could echo
/// what it was sent (the password); the log line has the answer.
fn not_ready_reason(error: &LoginError) -> String {
    match error {
        LoginError::Refused { status, .. } => {
            format!("refused with HTTP {status}; check ANTINEX_USER and ANTINEX_PASSWORD")
        }
        LoginError::Transport(e) => format!("login request failed: {e}"),
    }
}

/// How long until the token should be renewed, read from its `exp` claim without verifying the
/// signature (the client has no key). `None`: no `exp`, unreadable, or already past by our clock.
pub fn renew_in(token: &str, renew_before: Duration) -> Option<Duration> {
    let claims: Claims = jsonwebtoken::dangerous::insecure_decode_claims(token).ok()?;
    let remaining = claims.exp? - unix_now();
    if !remaining.is_finite() || remaining <= 0.0 {
        return None;
    }
    let margin = renew_before.as_secs_f64().min(remaining / 5.0);
    Some(Duration::from_secs_f64(remaining - margin))
}

impl Auth {
    pub fn new(
        api: Api,
        metrics: PublisherMetrics,
        readiness: Readiness,
        renew_before: Duration,
        retry: Backoff,
    ) -> Self {
        Auth {
            api,
            state: Mutex::new(State::default()),
            login: tokio::sync::Mutex::new(retry),
            renew_before,
            metrics,
            readiness,
            refused: RefusedLogins {
                give_up_after: None,
                since: Mutex::new(None),
                reason: Mutex::new(None),
                stop: CancellationToken::new(),
            },
        }
    }

    /// Stops the run (cancels `stop`) once every login for `after` was refused.
    pub fn give_up_on_refused_logins(
        mut self,
        after: Option<Duration>,
        stop: CancellationToken,
    ) -> Self {
        self.refused.give_up_after = after;
        self.refused.stop = stop;
        self
    }

    /// Why the run was stopped, when refused logins stopped it.
    pub fn gave_up(&self) -> Option<String> {
        self.refused
            .reason
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn note_refusal(&self, status: u16) {
        let Some(limit) = self.refused.give_up_after else {
            return;
        };
        let since = *self
            .refused
            .since
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert_with(Instant::now);
        if since.elapsed() >= limit {
            let mut reason = self
                .refused
                .reason
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if reason.is_none() {
                *reason = Some(format!(
                    "AntiNex login at {} refused with HTTP {status} for {} s: check ANTINEX_USER and ANTINEX_PASSWORD",
                    self.api.redacted_base(),
                    limit.as_secs()
                ));
                self.refused.stop.cancel();
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn current(&self) -> Option<Token> {
        let state = self.lock();
        let fresh = state.renew_at.is_none_or(|at| Instant::now() < at);
        match (&state.token, fresh) {
            (Some(value), true) => Some(Token {
                value: value.clone(),
                generation: state.generation,
            }),
            _ => None,
        }
    }

    /// A usable token, logging in when there is none or it is about to expire.
    /// `None` only when shutdown came first.
    pub async fn token(&self, shutdown: &CancellationToken) -> Option<Token> {
        loop {
            if let Some(token) = self.current() {
                return Some(token);
            }
            let mut backoff = tokio::select! {
                guard = self.login.lock() => guard,
                _ = shutdown.cancelled() => return None,
            };
            // Another task may have logged in while we waited for the lock.
            if let Some(token) = self.current() {
                return Some(token);
            }
            // Every login after the first renews the token, whether it was due (renew_at) or
            // dropped after a 401 (a token that expired in flight on a slow machine).
            let renewal = self.lock().generation > 0;
            match self.api.login().await {
                Ok(value) => {
                    let renew_after = renew_in(value.expose_secret(), self.renew_before);
                    if renew_after.is_none() {
                        tracing::debug!("token has no usable exp claim; relying on 401 to renew");
                    }
                    let mut state = self.lock();
                    state.token = Some(value);
                    state.renew_at = renew_after.map(|d| Instant::now() + d);
                    state.generation += 1;
                    drop(state);
                    backoff.reset();
                    *self.refused.since.lock().unwrap_or_else(|e| e.into_inner()) = None;
                    self.readiness.set_met(READY_LOGIN);
                    self.metrics.logins.with_label_values(&["ok"]).inc();
                    if renewal {
                        self.metrics.token_renewals.inc();
                    }
                }
                Err(error) => {
                    self.readiness
                        .set_not_met(READY_LOGIN, not_ready_reason(&error));
                    let delay = backoff.next_delay();
                    match &error {
                        LoginError::Refused { status, excerpt } => {
                            self.metrics.logins.with_label_values(&["refused"]).inc();
                            self.note_refusal(*status);
                            tracing::error!(
                                url = self.api.redacted_base(),
                                status,
                                response = excerpt.as_str(),
                                retry_in_ms = delay.as_millis() as u64,
                                "AntiNex login refused: check ANTINEX_USER and ANTINEX_PASSWORD"
                            );
                        }
                        LoginError::Transport(e) => {
                            self.metrics.logins.with_label_values(&[e.label()]).inc();
                            tracing::warn!(
                                url = self.api.redacted_base(),
                                error = %e,
                                retry_in_ms = delay.as_millis() as u64,
                                "AntiNex login failed"
                            );
                        }
                    }
                    if !sleep_or_shutdown(delay, shutdown).await {
                        return None;
                    }
                }
            }
        }
    }

    /// The server refused this token (401): forget it unless a newer one already replaced it.
    pub fn reject(&self, token: &Token) {
        let mut state = self.lock();
        if state.generation == token.generation {
            state.token = None;
            state.renew_at = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token_with_exp(exp: f64) -> String {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.sig",
            b64.encode(br#"{"typ":"JWT","alg":"HS256"}"#),
            b64.encode(format!(
                r#"{{"user_id":1,"username":"root","exp":{exp},"email":"e"}}"#
            ))
        )
    }

    #[test]
    fn renewal_comes_before_exp() {
        let now = unix_now().floor();
        let d = renew_in(&token_with_exp(now + 300.0), Duration::from_secs(30)).unwrap();
        assert!(
            d > Duration::from_secs(260) && d <= Duration::from_secs(270),
            "{d:?}"
        );
        // Short tokens renew at four fifths of what is left.
        let d = renew_in(&token_with_exp(now + 10.0), Duration::from_secs(30)).unwrap();
        assert!(d <= Duration::from_secs(8), "{d:?}");
        assert!(renew_in(&token_with_exp(now - 5.0), Duration::from_secs(30)).is_none());
        assert!(renew_in("garbage", Duration::from_secs(30)).is_none());
    }
}
