//! Child processes that never outlive the test and never fail silently, and
//! temp dirs that clean up.
//!
//! Each child writes stdout and stderr to its own file (see `logs`). When a
//! test fails, every child's last lines go to stderr with the failure. When
//! a test passes, a child that ended by itself, or that panicked, still
//! fails it: a crash the test did not cause is a finding, not noise. A child
//! ends "by the test" through [`Proc::kill`] or [`Proc::terminate`], by an
//! armed fault point (`OMS_FAULTS`), or after [`Proc::may_exit`].

use crate::logs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::Duration;

/// Longest [`Proc::terminate`] waits: a handler's worst drain (3 s leaving,
/// 10 s deadline, 1 s flush) and the gateway's grace fit with room to spare.
pub const TERMINATE_LIMIT: Duration = Duration::from_secs(40);

/// The workspace root (testkit lives one level below it).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// Path of a workspace binary built beside the running executable: a test
/// runs from `target/<profile>/deps`, a tool from `target/<profile>`; the
/// binaries are in `target/<profile>` (`just test` builds them all first).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("executable path");
    let dir = exe.parent().expect("target/<profile>");
    let profile_dir = if dir.ends_with("deps") {
        dir.parent().expect("target/<profile>")
    } else {
        dir
    };
    let path = profile_dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` (or `just test`)",
        path.display()
    );
    path
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral port")
        .port()
}

/// A running child process, killed when dropped.
pub struct Proc {
    pub name: String,
    /// `None` once the test has stopped it. A mutex so that liveness can be
    /// asked through `&self` (e.g. while waiting for a service).
    child: Mutex<Option<Child>>,
    pid: u32,
    log: PathBuf,
    copier: Option<JoinHandle<()>>,
    may_exit: bool,
    /// Checked already (by its `Stack`): its own drop need not check again.
    checked: bool,
}

impl Proc {
    /// Starts `command` with its output in a fresh file of this test's log
    /// folder (and on stderr too with `OMS_TEST_LOGS=1`).
    pub fn spawn(name: &str, mut command: Command) -> Proc {
        let log = logs::next_file(name);
        let prefix = log
            .file_stem()
            .map_or(name.into(), |s| s.to_string_lossy().into_owned());
        let (stdout, stderr, copier) = logs::outputs(&log, prefix)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", log.display()));
        // Plain text in the files: no colour codes to search around.
        if std::env::var_os("NO_COLOR").is_none() {
            command.env("NO_COLOR", "1");
        }
        command.stdin(Stdio::null()).stdout(stdout).stderr(stderr);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        drop(command); // closes our copies of the pipe's write end
        Proc {
            name: name.into(),
            pid: child.id(),
            child: Mutex::new(Some(child)),
            log,
            copier,
            may_exit: false,
            checked: false,
        }
    }

    /// Starts a workspace binary with the given environment.
    pub fn start(name: &str, env: &[(String, String)]) -> Proc {
        let mut command = Command::new(binary(name));
        command.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        Proc::spawn(name, command)
    }

    /// Its pid while the test has not stopped it, 0 after.
    pub fn pid(&self) -> u32 {
        if self.lock().is_some() {
            self.pid
        } else {
            0
        }
    }

    /// The file that holds its stdout and stderr.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Everything it has written so far.
    pub fn log(&self) -> String {
        std::fs::read(&self.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Waits (at most `limit`) until its log has a line containing
    /// `needle`; returns that line.
    pub async fn wait_for_line(&self, needle: &str, limit: Duration) -> String {
        let until = tokio::time::Instant::now() + limit;
        loop {
            if let Some(line) = self.log().lines().find(|l| l.contains(needle)) {
                return line.to_string();
            }
            assert!(
                tokio::time::Instant::now() < until,
                "{} logged no line with {needle:?} in {limit:?}; log: {}",
                self.name,
                self.log.display()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The test expects this process to end by itself (a one-shot binary,
    /// a crash the test arranged some other way than a fault point).
    pub fn may_exit(&mut self) {
        self.may_exit = true;
    }

    /// Whether the process has ended (or was stopped by the test).
    pub fn has_exited(&mut self) -> bool {
        self.exit_status().is_some() || self.lock().is_none()
    }

    /// How it ended, if it ended by itself; `None` while it runs or once
    /// the test stopped it.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        self.lock()
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// SIGKILL: the crash no code can react to. The test meant it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.lock().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then wait (at most [`TERMINATE_LIMIT`]) for the process to
    /// exit by itself. The test meant it; a process that does not exit in
    /// time is killed and fails the test.
    pub async fn terminate(&mut self) -> ExitStatus {
        self.terminate_within(TERMINATE_LIMIT).await
    }

    /// Like [`Proc::terminate`] with a limit of the caller's.
    pub async fn terminate_within(&mut self, limit: Duration) -> ExitStatus {
        let mut child = self
            .lock()
            .take()
            .unwrap_or_else(|| panic!("{}: terminate after it was stopped", self.name));
        // SAFETY: plain kill(2) on our own child's pid, not yet reaped.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let until = tokio::time::Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status;
            }
            if tokio::time::Instant::now() >= until {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{} (pid {}) did not exit within {limit:?} of SIGTERM; log: {}",
                    self.name,
                    self.pid,
                    self.log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Why this process should fail a test that otherwise passed: it ended
    /// without the test stopping it, or it panicked.
    pub fn trouble(&self) -> Option<String> {
        let log = self.log();
        if let Some(line) = log.lines().find(|l| l.contains("panicked at")) {
            return Some(format!("panicked: {line}"));
        }
        let status = self.exit_status()?;
        // A fault point announces itself before it kills or exits.
        let arranged = log.lines().any(|l| {
            l.starts_with("fault point ") && (l.ends_with(": Kill") || l.ends_with(": Exit"))
        });
        (!self.may_exit && !arranged).then(|| format!("ended by itself ({status})"))
    }

    /// [`Proc::trouble`], once: its drop will not ask again.
    pub(crate) fn check(&mut self) -> Option<String> {
        self.checked = true;
        self.trouble()
    }

    /// The last lines of its log, with a header naming it.
    pub fn report(&self) -> String {
        format!(
            "---- {} (pid {}): last {} lines of {} ----\n{}\n",
            self.name,
            self.pid,
            logs::TAIL_LINES,
            self.log.display(),
            logs::tail(&self.log, logs::TAIL_LINES)
        )
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Child>> {
        self.child.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let failing = std::thread::panicking();
        let trouble = if failing || self.checked {
            None
        } else {
            self.trouble()
        };
        self.kill();
        if let Some(copier) = self.copier.take() {
            logs::join_within(copier, Duration::from_secs(2));
        }
        if (failing || trouble.is_some()) && !logs::echo() {
            eprint!("{}", self.report());
        }
        if let Some(trouble) = trouble {
            panic!("{} (pid {}): {trouble}", self.name, self.pid);
        }
    }
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A directory under the system temp dir, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!(
            "oms-test-{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
