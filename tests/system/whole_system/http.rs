//! Small blocking HTTP helpers and polling.

use std::time::{Duration, Instant};

use reqwest::blocking::Client;

pub fn client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("HTTP client")
}

/// GET: (status, body), or `None` when nothing answers.
pub fn get(client: &Client, url: &str) -> Option<(u16, String)> {
    let response = client.get(url).send().ok()?;
    let status = response.status().as_u16();
    Some((status, response.text().unwrap_or_default()))
}

/// GET with `Authorization: {auth}`, parsed as JSON.
pub fn get_json(client: &Client, url: &str, auth: &str) -> serde_json::Value {
    let response = client
        .get(url)
        .header("Authorization", auth)
        .send()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = response.status();
    let body = response.text().unwrap_or_default();
    assert!(status.is_success(), "GET {url}: {status} {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {url}: {e}: {body}"))
}

/// POST a JSON body, parsed as JSON.
pub fn post_json(client: &Client, url: &str, body: &serde_json::Value) -> serde_json::Value {
    let response = client
        .post(url)
        .json(body)
        .send()
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let status = response.status();
    let text = response.text().unwrap_or_default();
    assert!(status.is_success(), "POST {url}: {status} {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("POST {url}: {e}: {text}"))
}

/// Polls `check` every 200 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
