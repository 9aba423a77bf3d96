//! The stand-in against the contract: the real JWT test vectors and the recorded/observed
//! responses in ../shared/data/antinex (skipped when that directory is absent).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use crate::support::standin;
use antinex_standin::StandinConfig;
use antinex_standin::jwt::{self, Claims, Rejection};
use serde_json::{Value, json};

fn antinex_data(test: &str) -> Option<PathBuf> {
    netpipe_testkit::paths::shared_data_or_skip(test).map(|d| d.join("antinex"))
}

fn load(dir: &std::path::Path, file: &str) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join(file)).unwrap()).unwrap()
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

#[test]
fn tokens_match_the_real_test_vectors_byte_for_byte() {
    let Some(dir) = antinex_data("tokens_match_the_real_test_vectors_byte_for_byte") else {
        return;
    };
    let vectors = load(&dir, "responses/jwt-test-vectors.json");
    let secret = vectors["secret"].as_str().unwrap();
    let list = vectors["vectors"].as_array().unwrap();
    assert_eq!(list.len(), 5);
    for v in list {
        let claims: Claims = serde_json::from_value(v["claims"].clone()).unwrap();
        let token = v["token"].as_str().unwrap();
        assert_eq!(
            jwt::sign(&claims, secret).unwrap(),
            token,
            "{}",
            v["source"]
        );
        // All are long expired; with another key they are not even decodable.
        assert_eq!(jwt::verify(token, secret), Err(Rejection::Expired));
        assert_eq!(
            jwt::verify(token, "not-the-key"),
            Err(Rejection::BadSignature)
        );
    }
}

struct Call {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
    text: String,
}

async fn call(request: reqwest::RequestBuilder) -> Call {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Call {
        status,
        headers,
        body,
        text,
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn login(http: &reqwest::Client, base: &str) -> String {
    let c = call(
        http.post(format!("{base}/api-token-auth/"))
            .json(&json!({"username": "root", "password": "123321"})),
    )
    .await;
    assert_eq!(c.status, 200);
    assert_eq!(keys(&c.body), BTreeSet::from(["token".to_string()]));
    c.body["token"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn auth_and_error_answers_match_the_observed_server() {
    let Some(dir) = antinex_data("auth_and_error_answers_match_the_observed_server") else {
        return;
    };
    let observed = load(&dir, "derived/observed-auth-and-error-responses.json");
    let case = |prefix: &str| -> Value {
        observed["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["request"].as_str().unwrap().starts_with(prefix))
            .unwrap_or_else(|| panic!("no observed case {prefix}"))
            .clone()
    };
    let server = standin(StandinConfig::default()).await;
    let base = server.url();
    let http = client();

    // Login: token shape and the header/claims of a fresh token.
    let token = login(&http, &base).await;
    let (header, rest) = token.split_once('.').unwrap();
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    assert_eq!(
        b64.decode(header).unwrap(),
        br#"{"typ":"JWT","alg":"HS256"}"#
    );
    let payload: Value =
        serde_json::from_slice(&b64.decode(rest.split_once('.').unwrap().0).unwrap()).unwrap();
    assert_eq!(
        keys(&payload),
        ["email", "exp", "user_id", "username"]
            .map(String::from)
            .into()
    );

    let checks: Vec<(&str, reqwest::RequestBuilder)> = vec![
        (
            "POST /api-token-auth/ wrong password",
            http.post(format!("{base}/api-token-auth/"))
                .json(&json!({"username": "root", "password": "nope"})),
        ),
        (
            "POST /api-token-auth/ body {}",
            http.post(format!("{base}/api-token-auth/"))
                .json(&json!({})),
        ),
        (
            "POST /api-token-auth/ body {username:''",
            http.post(format!("{base}/api-token-auth/"))
                .json(&json!({"username": "", "password": ""})),
        ),
        (
            "GET /api-token-auth/",
            http.get(format!("{base}/api-token-auth/")),
        ),
        (
            "POST /ml/ without Authorization",
            http.post(format!("{base}/ml/")).json(&json!({})),
        ),
        (
            "POST /ml/ with 'Authorization: Bearer",
            http.post(format!("{base}/ml/"))
                .header("Authorization", format!("Bearer {token}"))
                .json(&json!({})),
        ),
        (
            "POST /ml/ with 'Authorization: JWT not-logged-in",
            http.post(format!("{base}/ml/"))
                .header("Authorization", "JWT not-logged-in-no-token")
                .json(&json!({})),
        ),
        (
            "POST /ml/ with 'Authorization: JWT' (no token)",
            http.post(format!("{base}/ml/"))
                .header("Authorization", "JWT")
                .json(&json!({})),
        ),
        (
            "POST /ml/ with 'Authorization: JWT a b'",
            http.post(format!("{base}/ml/"))
                .header("Authorization", "JWT a b")
                .json(&json!({})),
        ),
        (
            "POST /ml/ authenticated, Content-Type text/plain",
            http.post(format!("{base}/ml/"))
                .header("Authorization", format!("JWT {token}"))
                .header("Content-Type", "text/plain")
                .body("{}"),
        ),
    ];
    for (prefix, request) in checks {
        let want = case(prefix);
        let got = call(request).await;
        assert_eq!(
            u64::from(got.status),
            want["status"].as_u64().unwrap(),
            "{prefix}"
        );
        assert_eq!(got.body, want["body"], "{prefix}");
        if let Some(www) = want["headers"]["WWW-Authenticate"].as_str() {
            assert_eq!(got.headers["www-authenticate"], www, "{prefix}");
        }
    }

    // An expired real token: the documented body.
    let vectors = load(&dir, "responses/jwt-test-vectors.json");
    let old = vectors["vectors"][0]["token"].as_str().unwrap();
    let got = call(
        http.post(format!("{base}/ml/"))
            .header("Authorization", format!("JWT {old}"))
            .json(&json!({})),
    )
    .await;
    assert_eq!(got.status, 401);
    assert_eq!(got.body, load(&dir, "responses/401-signature-expired.json"));

    // The scheme word is case-insensitive; malformed JSON is a parse error.
    let got = call(
        http.post(format!("{base}/ml/"))
            .header("Authorization", format!("jwt {token}"))
            .header("Content-Type", "application/json")
            .body("{bad"),
    )
    .await;
    assert_eq!(got.status, 400);
    assert!(
        got.body["detail"]
            .as_str()
            .unwrap()
            .starts_with("JSON parse error - ")
    );

    // Trailing slash rules.
    let got = call(
        http.post(format!("{base}/api-token-auth"))
            .json(&json!({"username": "root", "password": "123321"})),
    )
    .await;
    assert_eq!(
        got.status,
        case("POST /api-token-auth (no trailing slash")
            .get("status")
            .unwrap()
            .as_u64()
            .unwrap() as u16
    );
    let got = call(
        http.get(format!("{base}/ml/5"))
            .header("Authorization", format!("JWT {token}")),
    )
    .await;
    assert_eq!(got.status, 301);
    assert_eq!(got.headers["location"], "/ml/5/");
    assert!(got.text.is_empty());

    // Missing and foreign ids are 200 {}.
    let got = call(
        http.get(format!("{base}/ml/99/"))
            .header("Authorization", format!("JWT {token}")),
    )
    .await;
    assert_eq!((got.status, got.body), (200, json!({})));
    // Basic auth works too.
    let got = call(
        http.get(format!("{base}/mlresults/99/"))
            .basic_auth("root", Some("123321")),
    )
    .await;
    assert_eq!(got.status, 200);
}

#[tokio::test]
async fn jobs_results_and_predictions_have_the_recorded_shapes() {
    let Some(dir) = antinex_data("jobs_results_and_predictions_have_the_recorded_shapes") else {
        return;
    };
    let server = standin(StandinConfig {
        prediction_delay: Duration::from_millis(100),
        ..StandinConfig::default()
    })
    .await;
    let base = server.url();
    let http = client();
    let token = login(&http, &base).await;
    let request = load(&dir, "requests/only-publish-predict-rows-simple.json");
    let created = call(
        http.post(format!("{base}/ml/"))
            .header("Authorization", format!("JWT {token}"))
            .json(&request),
    )
    .await;
    assert_eq!(created.status, 201);
    let recorded =
        load(&dir, "derived/ml-create-201-predict-rows-constructed.json")["response"].clone();
    assert_eq!(keys(&created.body), keys(&recorded));
    assert_eq!(keys(&created.body["job"]), keys(&recorded["job"]));
    assert_eq!(keys(&created.body["results"]), keys(&recorded["results"]));
    assert_eq!(
        keys(&created.body["job"]["predict_manifest"]),
        keys(&recorded["job"]["predict_manifest"])
    );
    assert_eq!(created.body["job"]["status"], "launched");
    assert_eq!(
        created.body["job"]["predict_manifest"]["predict_rows"], request["predict_rows"],
        "rows echoed"
    );
    let job_id = created.body["job"]["id"].as_i64().unwrap();
    let result_id = created.body["results"]["id"].as_i64().unwrap();
    assert_eq!(
        created.body["job"]["predict_manifest"]["result_id"],
        result_id
    );
    // The real 201 for a dataset request has the same record shapes.
    let real = load(
        &dir,
        "responses/ml-create-201-job4-dataset-publish-to-core.json",
    );
    assert_eq!(keys(&created.body["job"]), keys(&real["job"]));
    assert_eq!(keys(&created.body["results"]), keys(&real["results"]));

    tokio::time::sleep(Duration::from_millis(150)).await;
    let result = call(
        http.get(format!("{base}/mlresults/{result_id}/"))
            .header("Authorization", format!("JWT {token}")),
    )
    .await;
    assert_eq!(result.status, 200);
    let finished =
        load(&dir, "derived/mlresults-get-200-finished-constructed.json")["response"].clone();
    assert_eq!(keys(&result.body), keys(&finished));
    assert_eq!(result.body["status"], "finished");
    let predictions = result.body["predictions_json"]["predictions"]
        .as_array()
        .unwrap();
    let rows = request["predict_rows"].as_array().unwrap();
    assert_eq!(predictions.len(), rows.len());
    let mut want_keys = keys(&finished["predictions_json"]["predictions"][0]);
    want_keys.insert("_dataset_index".into()); // the posted rows carry it; the model ignores it
    assert_eq!(keys(&predictions[0]), want_keys);
    assert_eq!(predictions[0]["_row_idx"], 0);
    assert_eq!(predictions[0]["_original_label_value"], 1.0);
    let job = call(
        http.get(format!("{base}/ml/{job_id}/"))
            .header("Authorization", format!("JWT {token}")),
    )
    .await;
    assert_eq!(job.body["status"], "finished");
    assert_eq!(
        keys(&job.body),
        keys(&load(&dir, "responses/ml-get-200-job3-finished.json"))
    );
}
