//! Fault points: named steps where a test can make a process crash or stall
//! on purpose, so that every crash-safety claim is proven at exactly the
//! moment it is about, every run, instead of by a random kill that may or
//! may not land there.
//!
//! `OMS_FAULTS` lists `point=action` pairs, comma-separated:
//! `OMS_FAULTS=reserve.after-write=kill,handle.before-reply=sleep:3000`.
//! Points in the runtime: `handle.before-reply` (service.rs: a request is
//! answered but its reply not yet sent, so a test can hold it in flight).
//! Actions: `kill` (SIGKILL this process: no reply, no cleanup, no drain),
//! `sleep:<ms>` (stall there), `exit` (exit 0 at once). Unset, a point
//! costs one lookup in an empty list. A point announces itself on stderr
//! (`fault point <name>: <action>`) before acting, so a test can tell that
//! its process died there and not elsewhere.

use std::sync::OnceLock;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Action {
    Kill,
    Exit,
    Sleep(Duration),
}

fn armed() -> &'static [(String, Action)] {
    static ARMED: OnceLock<Vec<(String, Action)>> = OnceLock::new();
    ARMED.get_or_init(|| {
        let spec = std::env::var("OMS_FAULTS").unwrap_or_default();
        parse(&spec).unwrap_or_else(|err| {
            eprintln!("OMS_FAULTS: {err}");
            std::process::exit(2)
        })
    })
}

fn parse(spec: &str) -> Result<Vec<(String, Action)>, String> {
    spec.split(',')
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (point, action) = pair
                .split_once('=')
                .ok_or_else(|| format!("{pair:?} is not point=action"))?;
            let action = match action {
                "kill" => Action::Kill,
                "exit" => Action::Exit,
                sleep => {
                    let millis = sleep
                        .strip_prefix("sleep:")
                        .and_then(|ms| ms.parse().ok())
                        .ok_or_else(|| format!("unknown action {action:?} for {point}"))?;
                    Action::Sleep(Duration::from_millis(millis))
                }
            };
            Ok((point.to_string(), action))
        })
        .collect()
}

/// Whether `name` is armed: lets a step prepare what its fault needs (e.g.
/// flush what it sent, so a kill there leaves it at the server).
pub fn is_armed(name: &str) -> bool {
    armed().iter().any(|(point, _)| point == name)
}

/// Acts if `name` is armed in `OMS_FAULTS`; otherwise returns at once.
pub async fn point(name: &str) {
    let Some((_, action)) = armed().iter().find(|(point, _)| point == name) else {
        return;
    };
    eprintln!("fault point {name}: {action:?}");
    match action {
        Action::Kill => kill_self(),
        Action::Exit => std::process::exit(0),
        Action::Sleep(pause) => tokio::time::sleep(*pause).await,
    }
}

/// SIGKILL, as an operator's `kill -9` would: nothing runs after it.
fn kill_self() -> ! {
    let pid = std::process::id().to_string();
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &pid])
        .status();
    // `kill` is missing or failed: abort is the next closest thing.
    std::process::abort()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_points_and_actions() {
        let armed = parse(" a.b=kill, c=sleep:250 ,d=exit,").unwrap();
        assert_eq!(
            armed,
            vec![
                ("a.b".to_string(), Action::Kill),
                ("c".to_string(), Action::Sleep(Duration::from_millis(250))),
                ("d".to_string(), Action::Exit),
            ]
        );
        assert!(parse("").unwrap().is_empty());
    }

    #[test]
    fn a_malformed_spec_is_an_error() {
        assert!(parse("nopoint").is_err());
        assert!(parse("a=explode").is_err());
        assert!(parse("a=sleep:soon").is_err());
    }
}
