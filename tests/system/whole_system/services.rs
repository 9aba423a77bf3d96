//! The service binaries as separate processes: found beside this test's executable, started with
//! an empty environment plus exactly the variables given (the names of deploy/compose.yml, checked
//! against each service's clap flags), logs in files, stopped by signal, killed on drop.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use clap::CommandFactory;

/// Every binary the test starts.
pub const BINARIES: [&str; 5] = [
    "capture-agent",
    "processor",
    "publisher",
    "dataset-builder",
    "antinex-standin",
];

/// `target/<profile>/<name>`: this test runs as `target/<profile>/deps/whole_system-<hash>`, and
/// `cargo test --workspace --all-targets` builds every binary of the workspace there.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test runs from target/<profile>/deps");
    let path = profile_dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: build them with cargo build --workspace --bins \
         (cargo test --workspace --all-targets builds them too)",
        path.display()
    );
    path
}

/// The environment variables a binary reads: its clap `env =` names (the source of truth, as
/// in tests/docs/deploy_env.rs) and RUST_LOG.
fn known_env(binary: &str) -> BTreeSet<String> {
    let command = match binary {
        "capture-agent" => capture_agent::Config::command(),
        "processor" => processor::Config::command(),
        "publisher" => publisher::Config::command(),
        "dataset-builder" => dataset_builder::Config::command(),
        // A small binary without a library Config (services/publisher/src/bin).
        "antinex-standin" => {
            return ["STANDIN_LISTEN", "DJANGO_SECRET_KEY", "RUST_LOG"]
                .map(String::from)
                .into();
        }
        other => panic!("unknown binary {other}"),
    };
    let mut names: BTreeSet<String> = command
        .get_arguments()
        .filter_map(|arg| arg.get_env())
        .map(|env| env.to_string_lossy().into_owned())
        .collect();
    names.insert("RUST_LOG".into());
    names
}

/// One running service.
pub struct Service {
    pub name: String,
    child: Child,
    log: PathBuf,
    status: Option<ExitStatus>,
}

impl Service {
    /// Starts `binary` as `name` with only PATH and `env` in its environment; stdout and
    /// stderr go to `{logs}/{name}.log`.
    pub fn start(name: &str, binary_name: &str, env: &[(&str, String)], logs: &Path) -> Service {
        let known = known_env(binary_name);
        for (key, _) in env {
            assert!(
                known.contains(*key),
                "{binary_name} does not read {key}: the test must use its config.rs names"
            );
        }
        let log = logs.join(format!("{name}.log"));
        let out = File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let mut command = Command::new(binary(binary_name));
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {binary_name}: {e}"));
        Service {
            name: name.to_string(),
            child,
            log,
            status: None,
        }
    }

    /// The exit status if the process has ended.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    /// The last lines of the service's log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends `signal` (SIGTERM, SIGINT) to the process.
    #[allow(unsafe_code)] // libc::kill of a child
    pub fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid fits pid_t");
        // SAFETY: kill(2) with a pid this test started and has not reaped yet.
        let sent = unsafe { libc::kill(pid, signal) };
        assert_eq!(sent, 0, "kill({pid}, {signal}) failed");
    }

    /// Sends `signal` and waits up to `timeout` for the exit; `None` if it did not exit.
    pub fn stop(&mut self, signal: libc::c_int, timeout: Duration) -> Option<ExitStatus> {
        if self.exited().is_none() {
            self.signal(signal);
        }
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Service {
    /// A failing test leaves no process behind.
    fn drop(&mut self) {
        if self.exited().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The running services of one test; a failed check panics with the end of every log.
pub struct System {
    pub services: Vec<Service>,
    pub logs: PathBuf,
}

impl System {
    pub fn start(&mut self, name: &str, binary: &str, env: &[(&str, String)]) -> usize {
        self.services
            .push(Service::start(name, binary, env, &self.logs));
        self.services.len() - 1
    }

    pub fn report(&self) -> String {
        self.services
            .iter()
            .map(|s| format!("\n===== {} =====\n{}", s.name, s.log_tail(25)))
            .collect()
    }

    #[track_caller]
    pub fn check(&self, ok: bool, what: impl std::fmt::Display) {
        assert!(ok, "{what}{}", self.report());
    }
}
