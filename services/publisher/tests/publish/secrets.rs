//! Passwords and tokens never reach the logs, whatever happens (refused login, renewals, polls).

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::*;
use antinex_standin::{StandinConfig, User};
use tokio_util::sync::CancellationToken;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

const GOOD: &str = "pw-Very-Secret-42";
const WRONG: &str = "pw-Wrong-Secret-43";

// current_thread: every task runs on this thread, under the capturing subscriber.
#[tokio::test(flavor = "current_thread")]
async fn passwords_and_tokens_never_appear_in_logs() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(captured.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = standin(StandinConfig {
        token_lifetime: Duration::from_secs(1),
        prediction_delay: Duration::from_millis(50),
        users: vec![User {
            id: 1,
            username: "root".into(),
            password: GOOD.into(),
            email: "root@email.com".into(),
            active: true,
        }],
        ..StandinConfig::default()
    })
    .await;
    let url = stream("secrets-wrong");
    let _feeder = feed(&url, 2, 20).await;

    // First with the wrong password: refused logins are logged, the password is not.
    let mut wrong = config(&url, &server.url());
    wrong.password = publisher::SecretString::from(WRONG);
    tracing::info!(config = ?wrong, "starting with the wrong password");
    let shutdown = CancellationToken::new();
    let run = tokio::spawn(publisher::run(wrong, shutdown.clone()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    shutdown.cancel();
    with_timeout(run).await.unwrap().unwrap();

    // Then right, with 1 s tokens (renewals) and predictions polled with the token.
    // (memory:// does not redeliver what the first run read, so the second run gets its own rows.)
    let url = stream("secrets-right");
    let _feeder = feed(&url, 20, 20).await;
    let mut right = config(&url, &server.url());
    right.password = publisher::SecretString::from(GOOD);
    right.batch_rows = 50;
    right.poll_predictions = publisher::PollPredictions::Auto;
    tracing::info!(config = ?right, "starting with the right password");
    let summary = run_until(right, "400 rows", || accepted(&server) >= 400).await;
    assert_eq!(summary.rows_sent, 400);

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("AntiNex login refused"),
        "the refusal is logged clearly"
    );
    assert!(logs.contains("publisher finished"));
    assert!(!logs.contains(GOOD), "password in logs");
    assert!(!logs.contains(WRONG), "wrong password in logs");
    // Every JWT starts with the base64 of `{"typ":"JWT"...`: eyJ.
    assert!(!logs.contains("eyJ"), "token in logs");
    assert!(server.state.count(&server.state.counters.logins_ok) >= 1);
}
