//! rediss://: the agent replays into a private redis-server that speaks TLS only on its TLS
//! port, with a CA the test generates (openssl CLI); the agent trusts it through SSL_CERT_FILE
//! (rustls-native-certs). A client given another CA is refused: /ready names the broker and
//! nothing is published. amqps:// the same way, against a private RabbitMQ node of the test with
//! a TLS listener (skipped when rabbitmq-server is not installed).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

const BIN: &str = env!("CARGO_BIN_EXE_capture-agent");

fn openssl(dir: &Path, args: &[&str]) {
    let status = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("the openssl CLI");
    assert!(status.success(), "openssl {args:?}");
}

/// A CA (`{name}-ca.pem`) and, when `server`, a certificate for localhost / 127.0.0.1 signed by
/// it (`{name}-server.pem`, `{name}-server.key`).
fn make_ca(dir: &Path, name: &str, server: bool) -> PathBuf {
    let ca_key = format!("{name}-ca.key");
    let ca = format!("{name}-ca.pem");
    let subject = format!("/CN=netpipe test CA {name}");
    openssl(
        dir,
        &[
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", &ca_key, "-out", &ca,
            "-days", "1", "-subj", &subject,
        ],
    );
    if server {
        let key = format!("{name}-server.key");
        let csr = format!("{name}-server.csr");
        let cert = format!("{name}-server.pem");
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &key,
                "-out",
                &csr,
                "-subj",
                "/CN=localhost",
            ],
        );
        std::fs::write(
            dir.join("san.cnf"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
        )
        .unwrap();
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                &ca,
                "-CAkey",
                &ca_key,
                "-CAcreateserial",
                "-out",
                &cert,
                "-days",
                "1",
                "-extfile",
                "san.cnf",
            ],
        );
    }
    dir.join(ca)
}

/// redis-server with TLS on `tls_port` and plain TCP on `plain_port` (for the test's checks).
struct TlsRedis(Child);

impl TlsRedis {
    fn start(dir: &Path, tls_port: u16, plain_port: u16) -> TlsRedis {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &plain_port.to_string()])
            .args(["--tls-port", &tls_port.to_string()])
            .arg("--tls-cert-file")
            .arg(dir.join("good-server.pem"))
            .arg("--tls-key-file")
            .arg(dir.join("good-server.key"))
            .arg("--tls-ca-cert-file")
            .arg(dir.join("good-ca.pem"))
            .args([
                "--tls-auth-clients",
                "no",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", tls_port)).is_err()
            || std::net::TcpStream::connect(("127.0.0.1", plain_port)).is_err()
        {
            assert!(Instant::now() < deadline, "TLS redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        TlsRedis(child)
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn xlen(plain_port: u16, stream: &str) -> u64 {
    let mut conn = redis::Client::open(format!("redis://127.0.0.1:{plain_port}"))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    redis::cmd("XLEN")
        .arg(stream)
        .query_async(&mut conn)
        .await
        .unwrap()
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs redis-server and openssl installed: run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test]
async fn rediss_with_the_test_ca_delivers_and_a_wrong_ca_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let good_ca = make_ca(dir.path(), "good", true);
    let wrong_ca = make_ca(dir.path(), "wrong", false);
    let (tls_port, plain_port) = (free_port(), free_port());
    let _redis = TlsRedis::start(dir.path(), tls_port, plain_port);
    let pcap = dir.path().join("tls.pcap");
    write_pcap(&pcap, &make_packets(500, 1_700_000_000_000_000, 10));
    let url = format!("rediss://localhost:{tls_port}");

    // The right CA: the whole file arrives over TLS.
    let stream = unique("tls-good");
    let output = Command::new(BIN)
        .arg("--read")
        .arg(&pcap)
        .args(["--exit-at-eof", "--broker-url", &url, "--stream", &stream])
        .args(["--batch-size", "100", "--ops-addr", "127.0.0.1:0"])
        .args(["--stats-message-secs", "0"])
        .env("SSL_CERT_FILE", &good_ca)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        xlen(plain_port, &stream).await,
        5,
        "five batches of 100 frames"
    );

    // Another CA: the server's certificate is refused; /ready says so and nothing arrives.
    let stream = unique("tls-wrong");
    let ops = format!("127.0.0.1:{}", free_port());
    let mut child = Command::new(BIN)
        .arg("--read")
        .arg(&pcap)
        .args(["--exit-at-eof", "--broker-url", &url, "--stream", &stream])
        .args(["--ops-addr", &ops])
        .env("SSL_CERT_FILE", &wrong_ca)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr = ops.parse().unwrap();
    let refused = wait_until(Duration::from_secs(20), || async {
        match reqwest::get(format!("http://{ops}/ready")).await {
            Ok(_) => {
                let (status, body) = ops_get(addr, "/ready").await;
                status == 503 && body.contains("broker reachable")
            }
            Err(_) => false,
        }
    })
    .await;
    let _ = child.kill();
    let _ = child.wait();
    assert!(refused, "/ready never named the refused broker");
    assert_eq!(xlen(plain_port, &stream).await, 0, "nothing published");
}

/// A private RabbitMQ node with a plain and a TLS listener (the good CA's server certificate);
/// stopped through the pid its node writes.
struct TlsRabbit {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl TlsRabbit {
    fn start(dir: &Path, port: u16, tls_port: u16) -> Option<TlsRabbit> {
        if !Path::new("/usr/sbin/rabbitmq-server").exists() {
            netpipe_testkit::skip("amqps test", "rabbitmq-server is not installed");
            return None;
        }
        let node = dir.join("rabbit");
        std::fs::create_dir_all(&node).unwrap();
        for path in [dir, node.as_path()] {
            let mut perms = std::fs::metadata(path).unwrap().permissions();
            std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o777);
            std::fs::set_permissions(path, perms).unwrap();
        }
        for file in ["good-ca.pem", "good-server.pem", "good-server.key"] {
            let mut perms = std::fs::metadata(dir.join(file)).unwrap().permissions();
            std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o644);
            std::fs::set_permissions(dir.join(file), perms).unwrap();
        }
        std::fs::write(
            node.join("rabbitmq.conf"),
            format!(
                "listeners.tcp.local = 127.0.0.1:{port}\n\
                 listeners.ssl.local = 127.0.0.1:{tls_port}\n\
                 ssl_options.cacertfile = {}\n\
                 ssl_options.certfile = {}\n\
                 ssl_options.keyfile = {}\n\
                 ssl_options.verify = verify_none\n\
                 ssl_options.fail_if_no_peer_cert = false\n",
                dir.join("good-ca.pem").display(),
                dir.join("good-server.pem").display(),
                dir.join("good-server.key").display(),
            ),
        )
        .unwrap();
        std::fs::write(node.join("plugins"), "[].\n").unwrap();
        let child = Command::new("/usr/sbin/rabbitmq-server")
            .env("RABBITMQ_PID_FILE", node.join("pid"))
            .env("RABBITMQ_NODENAME", format!("netpipe-tls-{port}@localhost"))
            .env("RABBITMQ_NODE_PORT", port.to_string())
            .env("RABBITMQ_DIST_PORT", free_port().to_string())
            .env("RABBITMQ_CONFIG_FILE", node.join("rabbitmq.conf"))
            .env("RABBITMQ_MNESIA_BASE", node.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", node.join("log"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", node.join("plugins"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("rabbitmq-server");
        let rabbit = TlsRabbit {
            child,
            dir: node,
            port,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
            || std::net::TcpStream::connect(("127.0.0.1", tls_port)).is_err()
        {
            assert!(Instant::now() < deadline, "private RabbitMQ did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(rabbit)
    }
}

impl Drop for TlsRabbit {
    #[allow(unsafe_code)] // libc::kill of a child
    fn drop(&mut self) {
        let pid = std::fs::read_to_string(self.dir.join("pid"))
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
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs rabbitmq-server installed: run with --features system-tests (scripts/test.sh does)"
)]
#[tokio::test]
async fn amqps_with_the_test_ca_delivers_and_a_wrong_ca_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let good_ca = make_ca(dir.path(), "good", true);
    let wrong_ca = make_ca(dir.path(), "wrong", false);
    let (port, tls_port) = (free_port(), free_port());
    let Some(_rabbit) = TlsRabbit::start(dir.path(), port, tls_port) else {
        return;
    };
    let pcap = dir.path().join("tls.pcap");
    write_pcap(&pcap, &make_packets(500, 1_700_000_000_000_000, 10));
    let url = format!("amqps://guest:guest@localhost:{tls_port}/%2f");
    let plain = format!("amqp://guest:guest@127.0.0.1:{port}/%2f");

    let stream = unique("amqps-good");
    let mut good = consumer(&plain, &stream).await;
    let output = Command::new(BIN)
        .arg("--read")
        .arg(&pcap)
        .args(["--exit-at-eof", "--broker-url", &url, "--stream", &stream])
        .args(["--exchange", &stream, "--routing-key", &stream])
        .args(["--batch-size", "100", "--ops-addr", "127.0.0.1:0"])
        .env("SSL_CERT_FILE", &good_ca)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let frames = receive_frames(&mut good, 500, Duration::from_secs(20)).await;
    assert_eq!(frames.len(), 500, "the whole file over TLS");

    let stream = unique("amqps-wrong");
    let mut consumer = consumer(&plain, &stream).await;
    let ops = format!("127.0.0.1:{}", free_port());
    let mut child = Command::new(BIN)
        .arg("--read")
        .arg(&pcap)
        .args(["--exit-at-eof", "--broker-url", &url, "--stream", &stream])
        .args(["--exchange", &stream, "--routing-key", &stream])
        .args(["--ops-addr", &ops])
        .env("SSL_CERT_FILE", &wrong_ca)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr = ops.parse().unwrap();
    let refused = wait_until(Duration::from_secs(20), || async {
        match reqwest::get(format!("http://{ops}/ready")).await {
            Ok(_) => {
                let (status, body) = ops_get(addr, "/ready").await;
                status == 503 && body.contains("broker reachable")
            }
            Err(_) => false,
        }
    })
    .await;
    let _ = child.kill();
    let _ = child.wait();
    assert!(refused, "/ready never named the refused broker");
    assert!(
        receive_more(&mut consumer, Duration::from_millis(500))
            .await
            .is_empty(),
        "nothing published"
    );
}
