//! Where a child's output goes: one file per child in a folder per test, so
//! a failure can be explained after the fact, and a passing test can be
//! failed when a child panicked without anyone noticing.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Lines of a child's log shown when a test fails.
pub const TAIL_LINES: usize = 40;

/// Files handed out so far, per test folder and binary: `<binary>-<n>.log`.
static HANDED_OUT: Mutex<Option<HashMap<PathBuf, HashMap<String, u32>>>> = Mutex::new(None);

/// `target/test-logs/<test binary>-<test>`: libtest runs each test on a
/// thread named after it. Emptied when this process first uses it, so it
/// holds the last run only.
pub fn test_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("executable path");
    let mut profile_dir = exe.parent().expect("target/<profile>");
    if profile_dir.ends_with("deps") {
        profile_dir = profile_dir.parent().expect("target/<profile>");
    }
    let target = profile_dir.parent().unwrap_or(profile_dir);
    let stem = exe.file_stem().and_then(|s| s.to_str()).unwrap_or("test");
    // Cargo names a test binary `<name>-<16 hex digits>`.
    let binary = match stem.rsplit_once('-') {
        Some((name, hash)) if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
            name
        }
        _ => stem,
    };
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("unnamed").replace("::", ".");
    let test: String = test
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    target.join("test-logs").join(format!("{binary}-{test}"))
}

/// A fresh log file for the next child named `name` in this test.
pub fn next_file(name: &str) -> PathBuf {
    let dir = test_dir();
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    let tests = handed_out.get_or_insert_with(HashMap::new);
    if !tests.contains_key(&dir) {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    }
    let counters = tests.entry(dir.clone()).or_default();
    let n = counters.entry(name.to_string()).or_insert(0);
    let path = dir.join(format!("{name}-{n}.log"));
    *n += 1;
    path
}

/// With `OMS_TEST_LOGS=1` a child's output also goes to the test's stderr
/// as it comes.
pub fn echo() -> bool {
    std::env::var("OMS_TEST_LOGS").is_ok_and(|v| v == "1")
}

/// Stdout and stderr for a child that write to `path` (and, when echoing,
/// through a thread that also copies each line to stderr, prefixed).
pub fn outputs(
    path: &Path,
    prefix: String,
) -> std::io::Result<(Stdio, Stdio, Option<JoinHandle<()>>)> {
    let file = std::fs::File::create(path)?;
    if !echo() {
        return Ok((file.try_clone()?.into(), file.into(), None));
    }
    let (reader, writer) = std::io::pipe()?;
    let copier = std::thread::spawn(move || {
        let mut file = file;
        for line in BufReader::new(reader).split(b'\n').map_while(Result::ok) {
            let _ = file.write_all(&line);
            let _ = file.write_all(b"\n");
            // Straight to the stderr descriptor, past libtest's capture, as
            // an inherited stderr would.
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "[{prefix}] {}", String::from_utf8_lossy(&line));
        }
    });
    Ok((writer.try_clone()?.into(), writer.into(), Some(copier)))
}

/// Waits up to `limit` for the echo thread (it ends when every holder of
/// the pipe has exited); a grandchild still holding it is not waited for.
pub fn join_within(copier: JoinHandle<()>, limit: Duration) {
    let until = Instant::now() + limit;
    while !copier.is_finished() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(5));
    }
    if copier.is_finished() {
        let _ = copier.join();
    }
}

/// The last `n` lines of a file, or why it cannot be read.
pub fn tail(path: &Path, n: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(n)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}
