//! The harness's own promises: where output goes, what a failing test
//! shows, and which child endings fail a passing test.

use std::process::Command;
use std::time::Duration;
use testkit::{test_dir, Proc};

fn sh(script: &str) -> Proc {
    let mut command = Command::new("sh");
    command.args(["-c", script]);
    Proc::spawn("sh", command)
}

async fn until_ended(proc: &mut Proc) {
    testkit::eventually(5, "the child ends", || {
        let ended = proc.exit_status().is_some();
        async move { ended }
    })
    .await;
}

#[tokio::test]
async fn output_goes_to_a_file_per_child_in_a_folder_per_test() {
    let first = sh("echo to-stdout; echo to-stderr >&2; exec sleep 30");
    let second = sh("echo second; exec sleep 30");
    first
        .wait_for_line("to-stderr", Duration::from_secs(5))
        .await;
    second.wait_for_line("second", Duration::from_secs(5)).await;
    let dir = test_dir();
    assert!(dir.ends_with("test-logs/harness-output_goes_to_a_file_per_child_in_a_folder_per_test"));
    assert_eq!(first.log_path(), dir.join("sh-0.log"));
    assert_eq!(second.log_path(), dir.join("sh-1.log"));
    assert!(first.log().contains("to-stdout\n"), "{}", first.log());
}

#[tokio::test]
#[should_panic(expected = "sh (pid")]
async fn a_child_that_ends_by_itself_fails_a_passing_test() {
    let mut child = sh("exit 3");
    until_ended(&mut child).await;
    assert!(child.trouble().unwrap().contains("ended by itself"));
}

#[tokio::test]
#[should_panic(expected = "panicked: thread 'main' panicked at src/main.rs:1:1")]
async fn a_child_that_panicked_fails_a_passing_test() {
    let child = sh("echo \"thread 'main' panicked at src/main.rs:1:1\"; exec sleep 30");
    child
        .wait_for_line("panicked", Duration::from_secs(5))
        .await;
}

#[tokio::test]
async fn endings_the_test_caused_pass() {
    let mut killed = sh("exec sleep 30");
    killed.kill();
    let mut terminated = sh("exec sleep 30");
    assert!(!terminated.terminate().await.success());
    let mut allowed = sh("exit 0");
    allowed.may_exit();
    let mut faulted = sh("echo 'fault point reserve.after-write: Kill' >&2; kill -9 $$");
    until_ended(&mut allowed).await;
    until_ended(&mut faulted).await;
    for proc in [&killed, &terminated, &allowed, &faulted] {
        assert_eq!(proc.trouble(), None, "{}", proc.name);
    }
}

#[tokio::test]
#[should_panic(expected = "did not exit within 200ms of SIGTERM")]
async fn terminate_gives_up_with_a_message() {
    let mut stubborn = sh("trap '' TERM; echo ready; exec sleep 30");
    stubborn
        .wait_for_line("ready", Duration::from_secs(5))
        .await;
    stubborn.terminate_within(Duration::from_millis(200)).await;
}

/// Run by the next test only: fails with a child that printed 60 lines.
#[tokio::test]
#[ignore]
async fn helper_fails_with_a_chatty_child() {
    let child = sh("for i in $(seq 1 60); do echo chatty-$i; done; exec sleep 30");
    child
        .wait_for_line("chatty-60", Duration::from_secs(5))
        .await;
    panic!("the helper fails on purpose");
}

#[test]
fn a_failing_test_shows_the_end_of_each_childs_log() {
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "helper_fails_with_a_chatty_child"])
        .env_remove("OMS_TEST_LOGS")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{text}");
    assert!(text.contains("---- sh (pid"), "{text}");
    assert!(text.contains("last 40 lines of"), "{text}");
    assert!(
        text.contains("chatty-21\n") && text.contains("chatty-60"),
        "{text}"
    );
    assert!(!text.contains("chatty-20\n"), "more than 40 lines: {text}");
}

/// A handler SIGKILLed behind the test's back (not through `Proc::kill`)
/// fails the test when its stack is dropped.
#[tokio::test]
#[should_panic(expected = "inventory-get (pid")]
async fn a_handler_that_died_unnoticed_fails_its_stack() {
    let mut stack = testkit::Stack::start(&["inventory-get"]).await;
    // SAFETY: plain kill(2) on a child of this test.
    unsafe { libc::kill(stack.procs[0].pid() as libc::pid_t, libc::SIGKILL) };
    until_ended(&mut stack.procs[0]).await;
}
