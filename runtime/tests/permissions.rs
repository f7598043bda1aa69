//! `nats-users.conf` is what `permissions.rs` renders from the operation
//! table, and every binary that connects has a user in it.

use oms_runtime::permissions::{self, jobs};

#[test]
fn nats_users_conf_is_rendered_from_the_table() {
    let path = testkit::repo_root().join("nats-users.conf");
    let rendered = permissions::render();
    if std::env::var("OMS_WRITE_USERS").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &rendered).expect("write nats-users.conf");
    }
    let committed = std::fs::read_to_string(&path).expect("nats-users.conf");
    assert!(
        committed == rendered,
        "nats-users.conf is stale: run `OMS_WRITE_USERS=1 cargo test -p oms-runtime --test permissions`"
    );
}

#[test]
fn every_binary_has_a_user() {
    let bins = testkit::repo_root().join("handlers/src/bin");
    for entry in std::fs::read_dir(bins).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let name = name.trim_end_matches(".rs");
        assert!(
            permissions::users().contains(&name),
            "{name} has no NATS user in permissions.rs"
        );
    }
    assert!(jobs().iter().all(|j| j.name != permissions::INIT));
}
