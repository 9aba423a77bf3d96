//! The stand-in's HTTP surface.
// Handlers return a ready `Response` as their error: boxing it would only add noise.
#![allow(clippy::result_large_err)]

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use serde_json::{Map, Value, json};

use super::jwt::{self, Claims};
use super::records::Job;
use super::{StandinState, User, take};

type Shared = Arc<StandinState>;

pub fn router(state: Shared) -> Router {
    Router::new()
        .route("/api-token-auth/", post(login).get(method_not_allowed))
        .route("/api-token-auth", post(missing_slash_post))
        .route("/ml/", post(create_job))
        .route("/ml/{id}/", get(get_job))
        .route("/ml/{id}", get(redirect_slash))
        .route("/mlresults/{id}/", get(get_result))
        .route("/mlresults/{id}", get(redirect_slash_results))
        .with_state(state)
}

fn json_reply(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn detail(status: StatusCode, text: &str) -> Response {
    json_reply(status, json!({ "detail": text }))
}

fn unauthorized(state: &StandinState, text: &str) -> Response {
    state.counters.unauthorized.fetch_add(1, Ordering::SeqCst);
    (
        StatusCode::UNAUTHORIZED,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::WWW_AUTHENTICATE, "JWT realm=\"api\""),
        ],
        json!({ "detail": text }).to_string(),
    )
        .into_response()
}

async fn method_not_allowed() -> Response {
    detail(
        StatusCode::METHOD_NOT_ALLOWED,
        "Method \"GET\" not allowed.",
    )
}

/// Django's APPEND_SLASH cannot redirect a POST: with DEBUG on it is a RuntimeError page.
async fn missing_slash_post() -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        [(header::CONTENT_TYPE, "text/html")],
        "<h1>RuntimeError</h1><p>You called this URL via POST, but the URL doesn't end in a slash (APPEND_SLASH).</p>",
    )
        .into_response()
}

async fn redirect_slash(Path(id): Path<String>) -> Response {
    (
        StatusCode::MOVED_PERMANENTLY,
        [(header::LOCATION, format!("/ml/{id}/"))],
    )
        .into_response()
}

async fn redirect_slash_results(Path(id): Path<String>) -> Response {
    (
        StatusCode::MOVED_PERMANENTLY,
        [(header::LOCATION, format!("/mlresults/{id}/"))],
    )
        .into_response()
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn is_json(headers: &HeaderMap) -> Option<bool> {
    let ct = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let ct = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    Some(ct == "application/json")
}

fn percent_decode(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex: Vec<u8> = bytes.by_ref().take(2).collect();
                match std::str::from_utf8(&hex)
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(decoded) => out.push(decoded),
                    None => {
                        out.push(b'%');
                        out.extend_from_slice(&hex);
                    }
                }
            }
            other => out.push(other),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `POST /api-token-auth/` with a JSON or form body.
async fn login(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let fields: Map<String, Value> = if is_json(&headers) == Some(false) {
        String::from_utf8_lossy(&body)
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| (percent_decode(k), Value::from(percent_decode(v))))
            .collect()
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(map)) => map,
            Ok(_) => Map::new(),
            Err(e) => return detail(StatusCode::BAD_REQUEST, &format!("JSON parse error - {e}")),
        }
    };
    let mut errors = Map::new();
    let mut field = |name: &str| -> Option<String> {
        match fields.get(name).and_then(Value::as_str) {
            None => {
                errors.insert(name.into(), json!(["This field is required."]));
                None
            }
            Some("") => {
                errors.insert(name.into(), json!(["This field may not be blank."]));
                None
            }
            Some(v) => Some(v.to_string()),
        }
    };
    let (username, password) = (field("username"), field("password"));
    let (Some(username), Some(password)) = (username, password) else {
        state.counters.logins_refused.fetch_add(1, Ordering::SeqCst);
        return json_reply(StatusCode::BAD_REQUEST, Value::Object(errors));
    };
    let user = state
        .config
        .users
        .iter()
        .find(|u| u.username == username && u.password == password && u.active);
    let Some(user) = user else {
        state.counters.logins_refused.fetch_add(1, Ordering::SeqCst);
        return json_reply(
            StatusCode::BAD_REQUEST,
            json!({ "non_field_errors": ["Unable to log in with provided credentials."] }),
        );
    };
    let claims = Claims {
        user_id: user.id,
        username: user.username.clone(),
        exp: unix_now() + state.config.token_lifetime.as_secs() as i64,
        email: user.email.clone(),
    };
    match jwt::sign(&claims, &state.config.secret) {
        Ok(token) => {
            state.counters.logins_ok.fetch_add(1, Ordering::SeqCst);
            json_reply(StatusCode::OK, json!({ "token": token }))
        }
        Err(e) => detail(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// DRF's JWT, Basic (and, for the rest, anonymous) authentication, with the real messages.
fn authenticate<'a>(state: &'a StandinState, headers: &HeaderMap) -> Result<&'a User, Response> {
    let not_provided = "Authentication credentials were not provided.";
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Err(unauthorized(state, not_provided));
    };
    let parts: Vec<&str> = value.split_whitespace().collect();
    let scheme = parts.first().copied().unwrap_or("");
    if scheme.eq_ignore_ascii_case("jwt") {
        let token = match parts.len() {
            1 => {
                return Err(unauthorized(
                    state,
                    "Invalid Authorization header. No credentials provided.",
                ));
            }
            2 => parts[1],
            _ => {
                return Err(unauthorized(
                    state,
                    "Invalid Authorization header. Credentials string should not contain spaces.",
                ));
            }
        };
        let username = jwt::verify(token, &state.config.secret)
            .map_err(|r| unauthorized(state, r.detail()))?;
        return match state.config.users.iter().find(|u| u.username == username) {
            None => Err(unauthorized(state, "Invalid signature.")),
            Some(u) if !u.active => Err(unauthorized(state, "User account is disabled.")),
            Some(u) => Ok(u),
        };
    }
    if scheme.eq_ignore_ascii_case("basic") && parts.len() == 2 {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(parts[1])
            .ok()
            .and_then(|b| String::from_utf8(b).ok());
        let user = decoded.and_then(|pair| {
            let (name, password) = pair.split_once(':')?;
            state
                .config
                .users
                .iter()
                .find(|u| u.username == name && u.password == password && u.active)
        });
        return user.ok_or_else(|| unauthorized(state, "Invalid username/password."));
    }
    // Bearer and other schemes are ignored by every authenticator: anonymous.
    Err(unauthorized(state, not_provided))
}

fn created_reply(job: &Job, echo: bool, delay: Duration) -> Response {
    let finished = job.finished(delay) && delay.is_zero();
    json_reply(
        StatusCode::CREATED,
        json!({ "job": job.job_json(finished, echo), "results": job.result_json(finished) }),
    )
}

async fn create_job(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let user = match authenticate(&state, &headers) {
        Ok(user) => user.clone(),
        Err(reply) => return reply,
    };
    state.counters.ml_posts.fetch_add(1, Ordering::SeqCst);
    match is_json(&headers) {
        Some(true) => {}
        other => {
            let ct = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if other.is_some() || !body.is_empty() {
                return detail(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    &format!("Unsupported media type \"{ct}\" in request."),
                );
            }
        }
    }
    let faults = &state.faults;
    if take(&faults.slow_next) {
        tokio::time::sleep(Duration::from_millis(faults.slow_ms.load(Ordering::SeqCst))).await;
    }
    if take(&faults.fail_next) {
        return json_reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"job": null, "results": null}),
        );
    }
    if faults.refuse_all.load(Ordering::SeqCst) || take(&faults.refuse_next) {
        return json_reply(
            StatusCode::BAD_REQUEST,
            json!("MLJob Failed with ex=stand-in refused this request (injected)"),
        );
    }
    let parsed: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return detail(StatusCode::BAD_REQUEST, &format!("JSON parse error - {e}")),
    };
    let Value::Object(mut fields) = parsed else {
        return json_reply(
            StatusCode::BAD_REQUEST,
            json!("MLJob Failed with ex='list' object has no attribute 'get'"),
        );
    };
    for key in ["seed", "epochs", "batch_size", "num_splits", "version"] {
        if let Some(v) = fields.get(key)
            && !(v.is_i64() || v.as_str().is_some_and(|s| s.trim().parse::<i64>().is_ok()))
        {
            // int() failed inside the serializer: the real server loses the message.
            return (StatusCode::BAD_REQUEST, "").into_response();
        }
    }
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let rows = match fields.remove("predict_rows") {
        Some(Value::Array(rows)) => rows,
        _ => Vec::new(),
    };
    let publish_to_core = match fields.get("publish_to_core") {
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|v| v != 0.0),
        Some(Value::String(s)) => !s.is_empty(),
        _ => false,
    };
    let mut store = state.store();
    if let Some(key) = &key
        && let Some(&index) = store.by_key.get(key)
        && let Some(job) = store.jobs.get(index)
    {
        state.counters.duplicates.fetch_add(1, Ordering::SeqCst);
        return created_reply(job, state.config.echo_rows, state.config.prediction_delay);
    }
    let id = store.jobs.len() as i64 + 1;
    let row_idx = rows
        .iter()
        .map(|r| r.get("idx").and_then(Value::as_f64))
        .collect();
    let job = Job {
        id,
        user_id: user.id,
        user_name: user.username.clone(),
        created: Instant::now(),
        created_text: chrono::Utc::now().format("%Y-%m-%d %H:%M:%S").to_string(),
        body: fields,
        row_count: rows.len(),
        rows: state.config.keep_rows.then_some(rows),
        row_idx,
        publish_to_core,
        key: key.clone(),
    };
    state.counters.jobs_created.fetch_add(1, Ordering::SeqCst);
    state
        .counters
        .rows_accepted
        .fetch_add(job.row_count as u64, Ordering::SeqCst);
    let reply = created_reply(&job, state.config.echo_rows, state.config.prediction_delay);
    if let Some(key) = key {
        let index = store.jobs.len();
        store.by_key.insert(key, index);
    }
    store.jobs.push(job);
    reply
}

fn lookup(state: &StandinState, id: &str, user: &User) -> Result<Option<Job>, Response> {
    let Ok(id) = id.parse::<i64>() else {
        return Err(json_reply(
            StatusCode::BAD_REQUEST,
            json!(format!(
                "MLJob Failed with ex=invalid literal for int() with base 10: '{id}'"
            )),
        ));
    };
    let store = state.store();
    Ok(usize::try_from(id - 1)
        .ok()
        .and_then(|i| store.jobs.get(i))
        .filter(|j| j.user_id == user.id)
        .cloned())
}

async fn get_job(
    State(state): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let user = match authenticate(&state, &headers) {
        Ok(user) => user.clone(),
        Err(reply) => return reply,
    };
    match lookup(&state, &id, &user) {
        Err(reply) => reply,
        Ok(None) => json_reply(StatusCode::OK, json!({})),
        Ok(Some(job)) => {
            let finished = job.finished(state.config.prediction_delay);
            json_reply(
                StatusCode::OK,
                job.job_json(finished, state.config.echo_rows),
            )
        }
    }
}

async fn get_result(
    State(state): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let user = match authenticate(&state, &headers) {
        Ok(user) => user.clone(),
        Err(reply) => return reply,
    };
    state.counters.result_gets.fetch_add(1, Ordering::SeqCst);
    match lookup(&state, &id, &user) {
        Err(reply) => reply,
        Ok(None) => json_reply(StatusCode::OK, json!({})),
        Ok(Some(job)) => {
            let finished = job.finished(state.config.prediction_delay);
            json_reply(StatusCode::OK, job.result_json(finished))
        }
    }
}
