//! STAND-IN AntiNex REST API server for tests and benchmarks: not the real API.
//! Implements the contract in docs/publisher.md (JWT login, /ml/, /mlresults/).

use std::sync::atomic::Ordering;
use std::time::Duration;

use antinex_standin::{Standin, StandinConfig, User};
use anyhow::Context as _;
use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "antinex-standin",
    version,
    about = "Stand-in AntiNex REST API (tests and benchmarks only)"
)]
struct Args {
    #[arg(long, env = "STANDIN_LISTEN", default_value = "127.0.0.1:8010")]
    listen: String,
    /// HS256 key for tokens.
    #[arg(
        long,
        env = "DJANGO_SECRET_KEY",
        default_value = "supersecret",
        hide_env_values = true
    )]
    secret: String,
    #[arg(long, default_value_t = 300)]
    token_lifetime_secs: u64,
    #[arg(long, default_value_t = 2000)]
    prediction_delay_ms: u64,
    #[arg(long, default_value = "root")]
    user: String,
    #[arg(long, default_value = "123321", hide_default_value = true)]
    password: String,
    #[arg(long, default_value = "root@email.com")]
    email: String,
    /// Keep posted rows in memory (off for long benchmarks).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    keep_rows: bool,
    /// Echo rows in predict_manifest.predict_rows, as the real server does.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    echo_rows: bool,
    /// The first N POST /ml/ answer 500.
    #[arg(long, default_value_t = 0)]
    fail_first: u32,
    /// Print counters every N seconds (0 = never).
    #[arg(long, default_value_t = 0)]
    report_every_secs: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = StandinConfig {
        secret: args.secret,
        token_lifetime: Duration::from_secs(args.token_lifetime_secs),
        prediction_delay: Duration::from_millis(args.prediction_delay_ms),
        users: vec![User {
            id: 1,
            username: args.user,
            password: args.password,
            email: args.email,
            active: true,
        }],
        keep_rows: args.keep_rows,
        echo_rows: args.echo_rows,
    };
    let standin = Standin::start(config, &args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    standin
        .state
        .faults
        .fail_next
        .store(args.fail_first, Ordering::SeqCst);
    eprintln!(
        "antinex-standin (STAND-IN, not the real AntiNex API) listening on {}",
        standin.url()
    );
    let state = standin.state.clone();
    let report = args.report_every_secs;
    tokio::spawn(async move {
        if report == 0 {
            return;
        }
        loop {
            tokio::time::sleep(Duration::from_secs(report)).await;
            let c = &state.counters;
            eprintln!(
                "rows_accepted={} jobs={} duplicates={} logins={} unauthorized={}",
                c.rows_accepted.load(Ordering::SeqCst),
                c.jobs_created.load(Ordering::SeqCst),
                c.duplicates.load(Ordering::SeqCst),
                c.logins_ok.load(Ordering::SeqCst),
                c.unauthorized.load(Ordering::SeqCst),
            );
        }
    });
    // SIGTERM (docker stop, Kubernetes) or SIGINT (Ctrl-C).
    netpipe_runtime::ops::shutdown_token_on_signals()
        .cancelled()
        .await;
    let c = &standin.state.counters;
    eprintln!(
        "final rows_accepted={} jobs={} duplicates={}",
        c.rows_accepted.load(Ordering::SeqCst),
        c.jobs_created.load(Ordering::SeqCst),
        c.duplicates.load(Ordering::SeqCst)
    );
    standin.stop().await;
    Ok(())
}
