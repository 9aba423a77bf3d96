//! AMQP: the RabbitMQ broker is killed (-9) and restarted mid-stream while the capture-agent
//! replays into it and the processor consumes: 0 packets lost, 0 written twice. The broker is a
//! private RabbitMQ node of this test (own node name, port, data directory, no plugins); the
//! kill goes to the Erlang VM by the pid the node writes to its own pid file, nothing else.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

struct PrivateRabbit {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl PrivateRabbit {
    /// `None` (the test skips) when rabbitmq-server is not installed.
    fn start() -> Option<PrivateRabbit> {
        if !Path::new("/usr/sbin/rabbitmq-server").exists() {
            netpipe_testkit::skip("amqp_restart", "rabbitmq-server is not installed");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        // The node runs as the rabbitmq user.
        let mut perms = std::fs::metadata(dir.path()).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o777);
        std::fs::set_permissions(dir.path(), perms).unwrap();
        let port = free_port();
        std::fs::write(
            dir.path().join("rabbitmq.conf"),
            format!("listeners.tcp.local = 127.0.0.1:{port}\n"),
        )
        .unwrap();
        std::fs::write(dir.path().join("plugins"), "[].\n").unwrap();
        let child = Self::spawn(dir.path(), port);
        let mut rabbit = PrivateRabbit { child, port, dir };
        rabbit.wait_up();
        Some(rabbit)
    }

    fn spawn(dir: &Path, port: u16) -> Child {
        let dist = free_port();
        let _ = std::fs::remove_file(dir.join("pid"));
        Command::new("/usr/sbin/rabbitmq-server")
            .env("RABBITMQ_PID_FILE", dir.join("pid"))
            .env(
                "RABBITMQ_NODENAME",
                format!("netpipe-test-{port}@localhost"),
            )
            .env("RABBITMQ_NODE_PORT", port.to_string())
            .env("RABBITMQ_DIST_PORT", dist.to_string())
            .env("RABBITMQ_CONFIG_FILE", dir.join("rabbitmq.conf"))
            .env("RABBITMQ_MNESIA_BASE", dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", dir.join("log"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", dir.join("plugins"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("rabbitmq-server")
    }

    fn wait_up(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "private RabbitMQ did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// SIGKILL to the node's Erlang VM (its pid file names it), then the wrapper is reaped.
    #[allow(unsafe_code)] // libc::kill of a child
    fn kill_9(&mut self) {
        let pid = std::fs::read_to_string(self.dir.path().join("pid"))
            .ok()
            .and_then(|text| text.trim().parse::<i32>().ok());
        if let Some(pid) = pid.filter(|p| *p > 1) {
            // SAFETY: kill(2) on the pid of the VM this test started.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            if Instant::now() > deadline {
                eprintln!("amqp_restart: the private RabbitMQ survived kill -9");
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn restart(&mut self) {
        self.child = Self::spawn(self.dir.path(), self.port);
        self.wait_up();
    }
}

impl Drop for PrivateRabbit {
    fn drop(&mut self) {
        self.kill_9();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// (rows, distinct seqs) in the CSVs of `dir`.
fn rows_in(dir: &Path) -> (u64, u64) {
    let mut rows = 0;
    let mut seen = HashSet::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (0, 0);
    };
    for entry in entries.flatten() {
        let path: PathBuf = entry.path();
        if path.extension().is_none_or(|e| e != "csv") {
            continue;
        }
        let Ok(mut reader) = csv::Reader::from_path(&path) else {
            continue;
        };
        let header = reader.headers().unwrap().clone();
        let seq = header.iter().position(|h| h == "seq").unwrap();
        for record in reader.records().flatten() {
            rows += 1;
            seen.insert(record[seq].to_string());
        }
    }
    (rows, seen.len() as u64)
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs rabbitmq-server installed: run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_kill_9_and_restart_mid_stream_loses_and_duplicates_nothing() {
    let Some(mut rabbit) = PrivateRabbit::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("sample.pcap");
    let per_loop = netpipe_runtime::capture::sample::write_sample_pcap(&pcap).unwrap() as u64;
    let loops = 30_000 / per_loop;
    let ds = dir.path().join("ds");
    let url = rabbit.url();

    let mut agent_config = capture_agent::Config::for_replay(&pcap, &url, "amqp-restart");
    agent_config.loops = loops;
    agent_config.batch_size = 32;
    agent_config.speed = None;
    agent_config.reconnect_max_ms = 300;
    agent_config.agent_id = Some("amqp-agent".into());
    let agent = capture_agent::start(agent_config, CancellationToken::new())
        .await
        .unwrap();
    let mut processor_config = processor::Config::new(&url, &ds);
    processor_config.stream = "amqp-restart".into();
    processor_config.exchange = "amqp-restart".into();
    processor_config.routing_key = "amqp-restart".into();
    processor_config.dead_letter = "amqp-restart.dead".into();
    processor_config.commit_interval_ms = 200;
    let stop = CancellationToken::new();
    let processor = tokio::spawn(processor::run(processor_config, stop.clone()));

    let metrics = agent.metrics.clone();
    let started = Instant::now();
    while metrics.frames_published.get() < 8_000 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "replay too slow"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    rabbit.kill_9();
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", rabbit.port)).is_err(),
        "the broker is down"
    );
    rabbit.restart();
    let summary = agent.wait().await.unwrap();
    assert_eq!(summary.dropped_total(), 0, "{:?}", summary.dropped);
    let total = summary.packets_captured;
    assert_eq!(total, loops * per_loop);

    let started = Instant::now();
    loop {
        let (rows, distinct) = rows_in(&ds);
        if distinct >= total {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "{distinct} of {total} packets written"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        let _ = rows;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.cancel();
    processor.await.unwrap().unwrap();
    let (rows, distinct) = rows_in(&ds);
    assert_eq!(distinct, total, "0 lost");
    assert_eq!(rows, total, "0 written twice");
}
