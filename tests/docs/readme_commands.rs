//! Every shell command of README.md runs, in order, in a temporary directory, and succeeds
//! (issue 16): the README cannot drift from the binaries again.
//!
//! Commands come from the README's ```sh blocks. Each one is run, started as a service (the
//! README's long-running commands: checked alive, then stopped with SIGTERM and expected to
//! exit 0), or skipped for a stated reason. A README command in none of these lists fails the
//! test, and so does a list entry the README no longer has.
//!
//! What the test changes, and why (each one must still match the README, or the test fails):
//! fixed ports become free ones (other tests run beside this one), `/data` becomes `./data`
//! (nothing is written outside the temporary directory), and the README's rows stream name
//! gets a unique suffix. Stream, queue, group and dead-letter names the README leaves to their
//! defaults are set through their documented environment variables to unique names, deleted
//! afterwards. Brokers: this machine's Redis (127.0.0.1:6379) and RabbitMQ (127.0.0.1:5672).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// README commands not run here, with the reason.
const SKIPPED: &[(&str, &str)] = &[
    (
        "scripts/quickstart.sh",
        "builds a release binary (minutes) and writes into the repository; its job, `netpipe fixture` then `netpipe run --read`, is run below",
    ),
    ("scripts/test.sh", "is the test suite this test belongs to"),
    (
        "netpipe run --interface eth0 --filter 'tcp' --out ./datasets",
        "live capture on eth0 until Ctrl-C (tests/cli/run_cli.rs covers live capture on lo)",
    ),
    (
        "capture-agent --interface eth0 --profile tcp --broker-url redis://127.0.0.1:6379",
        "live capture on eth0 (services/capture-agent/tests/live_lo/main.rs covers live capture on lo)",
    ),
    (
        "capture-agent --interface eth0 --flows",
        "live capture on eth0 (services/capture-agent/tests/live_lo/main.rs covers live flows on lo)",
    ),
];

/// Sections whose commands all need docker, kubectl or a registry: skipped as a whole.
const SKIPPED_SECTIONS: &[(&str, &str)] = &[
    (
        "## Distributed mode (Docker Compose)",
        "needs docker (scripts/check-deploy.sh validates the compose file)",
    ),
    (
        "## Kubernetes",
        "needs docker, a registry and a cluster (scripts/check-deploy.sh validates the manifests)",
    ),
];

/// Long-running README commands: started, checked alive, stopped with SIGTERM at the end.
const SERVICES: &[&str] = &[
    "processor --broker-url redis://127.0.0.1:6379 --schema netpipe,antinex-v1 --ds-dir /data",
    "processor --broker-url kombu+redis://127.0.0.1:6379/15 --schema antinex-v1",
    "publisher --rows-url redis://127.0.0.1:6379 --rows-stream netpipe.rows",
    "processor --flows --ds-dir /data",
    "antinex-standin --listen 127.0.0.1:8010",
    "dataset-builder --ds-dir ./datasets --output-dir ./training --watch-secs 30 --ops-addr 127.0.0.1:9104",
];

/// README commands run to completion here (exit 0 expected), in README order.
const RUN: &[&str] = &[
    "netpipe decode -r capture.pcapng",
    "netpipe decode -r capture.pcap --schema antinex-v1",
    "netpipe decode -r capture.pcap --format jsonl",
    "netpipe decode -r capture.pcap -f 'tcp port 22' --payload-bytes 0",
    "netpipe flows -r capture.pcap > flows.csv",
    "netpipe flows -r capture.pcap --format jsonl --idle-timeout 5 --active-timeout 30 --splt 20",
    "netpipe decode -r capture.pcap -o rows.csv",
    "cat capture.pcap | netpipe decode -r -",
    "netpipe run --read capture.pcap --out ./datasets",
    "netpipe run --read capture.pcap --out ./datasets --flows",
    "netpipe fixture --out sample.pcap",
    "capture-agent --read capture.pcapng --exit-at-eof --broker-url amqp://guest:guest@127.0.0.1:5672/%2f",
    "capture-agent --read big.pcap --loop 10 --count 1000000 --exit-at-eof",
    "dataset-builder --glob './datasets/*.csv' --label-rule '1:attack:port=8080' --output-dir ./training",
];

/// Commands that need a service the README starts later: run once every service is up.
const AFTER_SERVICES: &[&str] = &["netpipe health-check http://127.0.0.1:9102/health"];

/// One README command: its text (continuations joined, comment removed) and its section.
#[derive(Debug, Clone)]
struct ReadmeCommand {
    section: String,
    text: String,
}

fn readme_commands() -> Vec<ReadmeCommand> {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let mut commands = Vec::new();
    let mut section = String::new();
    let mut in_sh = false;
    let mut pending = String::new();
    for line in readme.lines() {
        if !in_sh && line.starts_with("## ") {
            section = line.to_string();
        }
        if line.trim_start().starts_with("```") {
            in_sh = !in_sh && line.trim_start() == "```sh";
            continue;
        }
        if !in_sh {
            continue;
        }
        let code = strip_comment(line);
        if let Some(head) = code.strip_suffix('\\') {
            pending.push_str(head.trim_end());
            pending.push(' ');
            continue;
        }
        pending.push_str(code.trim());
        let text = std::mem::take(&mut pending).trim().to_string();
        if !text.is_empty() {
            commands.push(ReadmeCommand {
                section: section.clone(),
                text,
            });
        }
    }
    commands
}

/// Cuts a trailing ` # comment` (a `#` after whitespace, outside quotes).
fn strip_comment(line: &str) -> &str {
    let mut quote = None;
    let mut previous = ' ';
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), _) if c == q => quote = None,
            (None, '#') if previous.is_whitespace() => return line[..i].trim_end(),
            _ => {}
        }
        previous = c;
    }
    line.trim_end()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
    for name in [
        "netpipe",
        "capture-agent",
        "processor",
        "publisher",
        "dataset-builder",
        "antinex-standin",
    ] {
        assert!(
            dir.join(name).is_file(),
            "{name} is missing in {}: cargo build --workspace --bins",
            dir.display()
        );
    }
    dir
}

struct Runner {
    dir: PathBuf,
    path: String,
    env: BTreeMap<String, String>,
    substitutions: Vec<(String, String, &'static str, bool)>,
}

impl Runner {
    fn rewrite(&mut self, text: &str) -> String {
        let mut out = text.to_string();
        for (from, to, _, used) in &mut self.substitutions {
            if out.contains(from.as_str()) {
                out = out.replace(from.as_str(), to);
                *used = true;
            }
        }
        out
    }

    fn command(&self, text: &str, extra_env: &[(&str, String)]) -> Command {
        let mut command = Command::new("sh");
        command
            .args(["-c", text])
            .current_dir(&self.dir)
            .env_clear()
            .env("PATH", &self.path)
            .env("HOME", &self.dir)
            .envs(&self.env)
            .stdin(Stdio::null());
        for (k, v) in extra_env {
            command.env(k, v);
        }
        command
    }
}

/// Per-service environment: the README's processor answers health checks on `proc_port`.
fn service_env(readme: &str, proc_port: u16) -> Vec<(&'static str, String)> {
    if readme.starts_with("processor --broker-url redis://") {
        vec![("OPS_ADDR", format!("127.0.0.1:{proc_port}"))]
    } else {
        Vec::new()
    }
}

fn run_to_end(runner: &Runner, readme: &str, text: &str, log: &Path) -> Result<(), String> {
    let out_file = std::fs::File::create(log).unwrap();
    let mut child = runner
        .command(text, &[])
        .stdout(out_file.try_clone().unwrap())
        .stderr(out_file)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return if status.success() {
                Ok(())
            } else {
                Err(format!(
                    "`{readme}` (run as `{text}`) failed with {status}:\n{}",
                    tail(log)
                ))
            };
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return Err(format!(
                "`{readme}` still running after 60 s:\n{}",
                tail(log)
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

struct Service {
    readme: String,
    child: Child,
    log: PathBuf,
}

/// A service left running by a failed assertion is killed, never orphaned.
impl Drop for Service {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn stop(service: &mut Service) -> Result<(), String> {
    let _ = Command::new("kill")
        .args(["-TERM", &service.child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = service.child.try_wait().unwrap() {
            return if status.success() {
                Ok(())
            } else {
                Err(format!(
                    "service `{}` exited with {status} on SIGTERM:\n{}",
                    service.readme,
                    tail(&service.log)
                ))
            };
        }
        if Instant::now() > deadline {
            let _ = service.child.kill();
            return Err(format!("service `{}` ignored SIGTERM", service.readme));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn csv_rows_under(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "csv"))
                .map(|p| {
                    std::fs::read_to_string(p)
                        .map(|t| t.lines().count().saturating_sub(1))
                        .unwrap_or(0)
                })
                .sum()
        })
        .unwrap_or(0)
}

/// Deletes every Redis key starting with `prefix` (streams, kombu lists and their liveness
/// keys, in db 0 and the kombu db 15) and the AMQP queues and exchanges in `names`.
fn cleanup_brokers(prefix: &str, names: &[String]) {
    for db in [0, 15] {
        if let Ok(client) = redis::Client::open(format!("redis://127.0.0.1:6379/{db}"))
            && let Ok(mut conn) = client.get_connection()
        {
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{prefix}*"))
                .query(&mut conn)
                .unwrap_or_default();
            for key in keys {
                let _: redis::RedisResult<i64> = redis::cmd("DEL").arg(key).query(&mut conn);
            }
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let Ok(conn) = lapin::Connection::connect(
            "amqp://guest:guest@127.0.0.1:5672/%2f",
            lapin::ConnectionProperties::default(),
        )
        .await
        else {
            return;
        };
        if let Ok(channel) = conn.create_channel().await {
            for name in names {
                let _ = channel
                    .queue_delete(
                        name.as_str().into(),
                        lapin::options::QueueDeleteOptions::default(),
                    )
                    .await;
                let _ = channel
                    .exchange_delete(
                        name.as_str().into(),
                        lapin::options::ExchangeDeleteOptions::default(),
                    )
                    .await;
            }
        }
        let _ = conn.close(0, "".into()).await;
    });
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs Redis and RabbitMQ at 127.0.0.1: run with --features system-tests (scripts/test.sh does)"
)]
#[test]
fn every_readme_command_runs() {
    let commands = readme_commands();
    let texts: Vec<&str> = commands.iter().map(|c| c.text.as_str()).collect();
    // Every README command is in exactly one list (or a skipped section).
    for command in &commands {
        let text = command.text.as_str();
        let lists = [
            RUN.contains(&text),
            SERVICES.contains(&text),
            AFTER_SERVICES.contains(&text),
            SKIPPED.iter().any(|(c, _)| *c == text),
            SKIPPED_SECTIONS.iter().any(|(s, _)| *s == command.section),
        ];
        assert_eq!(
            lists.iter().filter(|x| **x).count(),
            1,
            "README command `{text}` ({}) must be in exactly one list of tests/docs/readme_commands.rs: RUN, SERVICES, AFTER_SERVICES or SKIPPED (with a reason)",
            command.section
        );
    }
    // The lists name real README commands.
    for listed in SKIPPED
        .iter()
        .map(|(c, _)| *c)
        .chain(RUN.iter().copied())
        .chain(SERVICES.iter().copied())
        .chain(AFTER_SERVICES.iter().copied())
    {
        assert!(
            texts.contains(&listed),
            "`{listed}` is listed here but is not a README command any more"
        );
    }
    for (section, _) in SKIPPED_SECTIONS {
        assert!(
            commands.iter().any(|c| c.section == *section),
            "README has no commands in {section} any more"
        );
    }

    let id = format!("readme-{}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    // The files README commands read: a capture under each name used.
    let sample = work.join("capture.pcap");
    netpipe_runtime::capture::sample::write_sample_pcap(&sample).unwrap();
    for name in ["capture.pcapng", "big.pcap"] {
        std::fs::copy(&sample, work.join(name)).unwrap();
    }

    let (proc_port, standin_port, builder_port) = (free_port(), free_port(), free_port());
    let mut env = BTreeMap::new();
    for (k, v) in [
        ("FORWARD_QUEUE", id.clone()),
        ("FORWARD_EXCHANGE", id.clone()),
        ("FORWARD_ROUTING_KEY", id.clone()),
        ("PROCESSOR_GROUP", id.clone()),
        ("PROCESSOR_DEAD_LETTER", format!("{id}.dead")),
        ("ROWS_GROUP", id.clone()),
        ("ROWS_DEAD_LETTER", format!("{id}.rows.dead")),
        ("ANTINEX_URL", format!("http://127.0.0.1:{standin_port}")),
        ("OPS_ADDR", "127.0.0.1:0".to_string()),
        ("OPS_ADDR", "127.0.0.1:0".to_string()),
        ("SOURCE_HOST", "readme".to_string()),
    ] {
        env.insert(k.to_string(), v);
    }
    let bins = bin_dir();
    let mut runner = Runner {
        dir: work.clone(),
        path: format!(
            "{}:{}",
            bins.display(),
            std::env::var("PATH").unwrap_or_default()
        ),
        env,
        substitutions: vec![
            (
                "127.0.0.1:9102".into(),
                format!("127.0.0.1:{proc_port}"),
                "a free port instead of the processor's default",
                false,
            ),
            (
                "127.0.0.1:8010".into(),
                format!("127.0.0.1:{standin_port}"),
                "a free port for the stand-in",
                false,
            ),
            (
                "127.0.0.1:9104".into(),
                format!("127.0.0.1:{builder_port}"),
                "a free port for the dataset-builder service",
                false,
            ),
            (
                "--ds-dir /data".into(),
                "--ds-dir ./data".into(),
                "nothing written outside the temporary directory",
                false,
            ),
            (
                "netpipe.rows".into(),
                format!("{id}.rows"),
                "a rows stream of its own on the shared Redis",
                false,
            ),
        ],
    };

    let mut services: Vec<Service> = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    let mut deferred: Vec<(String, String)> = Vec::new();
    let mut skipped_report = Vec::new();
    for (n, command) in commands.iter().enumerate() {
        if let Some((_, why)) = SKIPPED_SECTIONS.iter().find(|(s, _)| *s == command.section) {
            skipped_report.push(format!("{}: {why}", command.text));
            continue;
        }
        if let Some((_, why)) = SKIPPED.iter().find(|(c, _)| *c == command.text) {
            skipped_report.push(format!("{}: {why}", command.text));
            continue;
        }
        let text = runner.rewrite(&command.text);
        if AFTER_SERVICES.contains(&command.text.as_str()) {
            deferred.push((command.text.clone(), text));
            continue;
        }
        let log = logs.join(format!("{n:02}.log"));
        if SERVICES.contains(&command.text.as_str()) {
            let out_file = std::fs::File::create(&log).unwrap();
            // `exec`: SIGTERM goes to the service, not to the shell around it.
            let child = runner
                .command(
                    &format!("exec {text}"),
                    &service_env(&command.text, proc_port),
                )
                .stdout(out_file.try_clone().unwrap())
                .stderr(out_file)
                .spawn()
                .unwrap();
            services.push(Service {
                readme: command.text.clone(),
                child,
                log,
            });
            continue;
        }
        if let Err(e) = run_to_end(&runner, &command.text, &text, &log) {
            failures.push(e);
        }
    }

    // Services: alive after settling, and doing their job where it can be seen.
    std::thread::sleep(Duration::from_secs(3));
    for service in &mut services {
        if let Some(status) = service.child.try_wait().unwrap() {
            failures.push(format!(
                "service `{}` exited with {status}:\n{}",
                service.readme,
                tail(&service.log)
            ));
        }
    }
    // The replayed packets went through Redis into the processor's CSV.
    let deadline = Instant::now() + Duration::from_secs(15);
    while csv_rows_under(&work.join("data")) == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    if csv_rows_under(&work.join("data")) == 0 {
        failures.push("the README's processor wrote no row into ./data".into());
    }
    for (readme, text) in &deferred {
        let log = logs.join(format!("after-{}.log", readme.len()));
        if let Err(e) = run_to_end(&runner, readme, text, &log) {
            failures.push(e);
        }
    }
    for service in &mut services {
        if let Err(e) = stop(service) {
            failures.push(e);
        }
    }
    cleanup_brokers(
        &id,
        &[
            id.clone(),
            format!("{id}.dead"),
            format!("{id}.rows"),
            format!("{id}.rows.dead"),
        ],
    );

    // Every README command was handled: run, started, deferred or skipped for a reason.
    let handled = commands.len();
    assert!(handled > 15, "only {handled} README commands found");
    for (from, _, why, used) in &runner.substitutions {
        assert!(
            used,
            "substitution of `{from}` ({why}) matches no README command any more"
        );
    }
    eprintln!(
        "README commands skipped:\n  {}",
        skipped_report.join("\n  ")
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
