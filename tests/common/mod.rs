//! Shared test support: builds the `engineio_echo` example once and runs it on a free port.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

/// Builds `examples/<name>` once per test binary (debug profile) and returns its path.
pub fn example_binary(name: &str) -> PathBuf {
    example_binary_in(name, "debug")
}

/// Builds `examples/<name>` once per test binary in `profile` (`debug` or `release`) and
/// returns its path. Tests whose figures are about speed (latency under load) run a
/// release build, as a deployment would.
pub fn example_binary_in(name: &str, profile: &str) -> PathBuf {
    static BUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    let key = format!("{profile}/{name}");
    if !built.contains(&key) {
        let mut args = vec!["build", "--quiet", "--example", name];
        if profile == "release" {
            args.push("--release");
        }
        let out = Command::new(env!("CARGO"))
            .args(&args)
            .current_dir(&manifest)
            .output()
            .unwrap_or_else(|e| panic!("run cargo build: {e}"));
        if !out.status.success() {
            panic!(
                "building example {name} failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        built.push(key);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("target"));
    target.join(profile).join("examples").join(name)
}

/// A running example server, killed when dropped.
pub struct ExampleServer {
    child: Child,
    /// The address it listens on.
    pub addr: SocketAddr,
}

impl ExampleServer {
    /// Starts `examples/<name>` with `args` plus `--port 0`, and waits for its
    /// `listening on <addr>` line.
    pub fn start(name: &str, args: &[&str]) -> ExampleServer {
        ExampleServer::start_binary(example_binary(name), args)
    }

    /// Starts the release build of `examples/<name>`, as [`ExampleServer::start`] does.
    pub fn start_release(name: &str, args: &[&str]) -> ExampleServer {
        ExampleServer::start_binary(example_binary_in(name, "release"), args)
    }

    /// An example (debug build) started through `wrapper` (e.g. `prlimit --nofile=N:N --`),
    /// which must exec it: the wrapper's process id is the example's.
    #[allow(dead_code)]
    pub fn start_wrapped(wrapper: &[&str], name: &str, args: &[&str]) -> ExampleServer {
        let binary = example_binary_in(name, "debug");
        let (program, before) = wrapper.split_first().expect("a wrapper command");
        let mut all: Vec<String> = before.iter().map(|s| (*s).to_owned()).collect();
        all.push(binary.to_string_lossy().into_owned());
        all.extend(args.iter().map(|s| (*s).to_owned()));
        ExampleServer::start_command(Command::new(program).args(all))
    }

    fn start_binary(binary: PathBuf, args: &[&str]) -> ExampleServer {
        ExampleServer::start_command(Command::new(binary).args(args))
    }

    fn start_command(command: &mut Command) -> ExampleServer {
        let mut child = command
            .args(["--port", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start example");
        let stdout = child.stdout.take().expect("stdout");
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        reader
            .read_line(&mut line)
            .expect("read the listening line");
        // Keep draining: a closed pipe would make the example's next println! panic.
        std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .parse()
            .expect("address");
        ExampleServer { child, addr }
    }

    /// The echo example on a free port with these extra arguments.
    pub fn echo(args: &[&str]) -> ExampleServer {
        ExampleServer::start("engineio_echo", args)
    }

    /// Sends SIGINT, as Ctrl-C in a terminal does.
    pub fn interrupt(&self) {
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -INT failed");
    }

    /// Sends SIGTERM, as systemd, Docker and process managers do to stop a service.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Waits up to `timeout` for the process to exit; its status, or `None` if it still runs.
    pub fn wait_exit(&mut self, timeout: std::time::Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        None
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The process's resident memory in KiB (`VmRSS` in `/proc/PID/status`).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("read /proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for ExampleServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
