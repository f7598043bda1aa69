//! Who may publish and subscribe what on NATS: one NATS user
//! per binary, each allowed exactly what its job needs, rendered from the
//! operation table into `nats-users.conf` (which `nats-server.conf`
//! includes). A new operation or binary gets its permissions here, or a
//! test fails (`runtime/tests/permissions.rs`).
//!
//! Passwords are never in the repository: the file names an environment
//! variable per user (`OMS_NATS_PASSWORD_<USER>`), which `just up`
//! generates into `.run/secrets.env` and the test harness per server.
//! No runtime user may create, change, purge or delete a stream: that is
//! `oms-init`'s alone. Each user reads replies only under its own inbox
//! prefix (`_INBOX_<user>`), so none can read another's.

use crate::contract::{self, Spec};

/// One binary's NATS user and what its job needs.
pub struct Job {
    /// The binary, its NATS user and its inbox prefix `_INBOX_<name>`.
    pub name: &'static str,
    /// The operation it serves.
    pub serves: Option<&'static Spec>,
    /// Key prefixes of the bucket it writes (`product` for `product.*`).
    pub writes: &'static [&'static str],
    /// Operations it calls by request-reply.
    pub calls: &'static [&'static Spec],
    /// Follows the bucket with consumers (list indexes, event derivation).
    pub follows: bool,
    /// Anything else it publishes.
    pub publishes: &'static [&'static str],
}

const STOCK: &[&str] = &["product", "order", "reservation"];

/// The binaries whose job is more than serving their operation with reads
/// of the bucket: every other operation of the table gets [`serves`] it
/// alone ([`jobs`]), so a new read operation needs no line here.
pub const JOBS: &[Job] = &[
    serves(&contract::INVENTORY_ADD_STOCK.spec, &["product", "request"]),
    serves(&contract::INVENTORY_RESERVE.spec, STOCK),
    serves(&contract::INVENTORY_RELEASE.spec, STOCK),
    serves(&contract::INVENTORY_COMMIT.spec, STOCK),
    Job {
        // `?at=`: the last revision as of a time, a direct get by request.
        publishes: &["$JS.API.DIRECT.GET.KV_oms"],
        ..serves(&contract::INVENTORY_GET.spec, &[])
    },
    Job {
        publishes: &[
            "$JS.API.STREAM.INFO.OMS_LEDGER",
            "$JS.API.DIRECT.GET.OMS_LEDGER",
            "$JS.API.DIRECT.GET.OMS_LEDGER.>",
        ],
        ..serves(&contract::INVENTORY_HISTORY.spec, &[])
    },
    serves(&contract::INVENTORY_ADJUST.spec, &["product"]),
    Job {
        follows: true,
        ..serves(&contract::INVENTORY_LIST.spec, &[])
    },
    Job {
        calls: &[&contract::INVENTORY_RESERVE.spec],
        ..serves(&contract::ORDERS_CREATE.spec, &[])
    },
    Job {
        calls: &[
            &contract::INVENTORY_RELEASE.spec,
            &contract::INVENTORY_COMMIT.spec,
        ],
        ..serves(&contract::ORDERS_UPDATE_STATUS.spec, &["order"])
    },
    Job {
        follows: true,
        ..serves(&contract::ORDERS_LIST.spec, &[])
    },
    Job {
        name: "orders-events",
        serves: None,
        writes: &[],
        calls: &[],
        follows: true,
        publishes: &[
            "events.>",
            "$JS.API.STREAM.INFO.OMS_EVENTS",
            "$JS.API.STREAM.MSG.GET.OMS_EVENTS",
            // An order revision that cannot be an event (derive.rs).
            "dlq.KV_oms.OMS_EVENTS",
        ],
    },
    Job {
        name: "inventory-ledger",
        serves: None,
        writes: &[],
        calls: &[],
        follows: true,
        publishes: &[
            "ledger.>",
            "$JS.API.STREAM.INFO.OMS_LEDGER",
            "$JS.API.STREAM.MSG.GET.OMS_LEDGER",
        ],
    },
    Job {
        // The auditor reads the bucket and the ledger, nothing else.
        name: "oms-verify",
        serves: None,
        writes: &[],
        calls: &[],
        follows: true,
        publishes: &[
            "$JS.API.STREAM.INFO.OMS_LEDGER",
            "$JS.API.CONSUMER.CREATE.OMS_LEDGER",
            "$JS.API.CONSUMER.CREATE.OMS_LEDGER.>",
            "$JS.API.CONSUMER.MSG.NEXT.OMS_LEDGER.>",
            "$JS.API.CONSUMER.DELETE.OMS_LEDGER.>",
            "$JS.API.CONSUMER.INFO.OMS_LEDGER.>",
        ],
    },
    Job {
        name: "inventory-holds",
        serves: None,
        writes: &[],
        calls: &[&contract::INVENTORY_RELEASE.spec],
        follows: false,
        publishes: &[
            "$JS.API.CONSUMER.INFO.KV_oms.inventory-holds",
            "$JS.API.CONSUMER.CREATE.KV_oms.inventory-holds",
            "$JS.API.CONSUMER.CREATE.KV_oms.inventory-holds.>",
            "$JS.API.CONSUMER.DURABLE.CREATE.KV_oms.inventory-holds",
            "$JS.API.CONSUMER.MSG.NEXT.KV_oms.inventory-holds",
            "$JS.ACK.KV_oms.inventory-holds.>",
            "dlq.KV_oms.inventory-holds",
            "dlq.KV_oms.orders-expiry",
            // Unpaid orders (OMS_PENDING_TTL): a second durable consumer.
            "$JS.API.CONSUMER.INFO.KV_oms.orders-expiry",
            "$JS.API.CONSUMER.CREATE.KV_oms.orders-expiry",
            "$JS.API.CONSUMER.CREATE.KV_oms.orders-expiry.>",
            "$JS.API.CONSUMER.DURABLE.CREATE.KV_oms.orders-expiry",
            "$JS.API.CONSUMER.MSG.NEXT.KV_oms.orders-expiry",
            "$JS.ACK.KV_oms.orders-expiry.>",
        ],
    },
];

const fn serves(op: &'static Spec, writes: &'static [&'static str]) -> Job {
    Job {
        name: op.service,
        serves: Some(op),
        writes,
        calls: &[],
        follows: false,
        publishes: &[],
    }
}

/// Every binary that connects to NATS, but the gateway and `oms-init`.
pub fn jobs() -> Vec<&'static Job> {
    static DEFAULTS: std::sync::OnceLock<Vec<Job>> = std::sync::OnceLock::new();
    let defaults = DEFAULTS.get_or_init(|| {
        contract::OPERATIONS
            .iter()
            .filter(|op| !JOBS.iter().any(|j| j.name == op.service))
            .map(|op| serves(op, &[]))
            .collect()
    });
    JOBS.iter().chain(defaults).collect()
}

/// Tools an operator runs now and then, not kept running.
pub const TOOLS: &[&str] = &["oms-verify"];

/// The binaries that serve no operation and run for ever (consumers,
/// derivations).
pub fn workers() -> impl Iterator<Item = &'static str> {
    JOBS.iter()
        .filter(|j| j.serves.is_none() && !TOOLS.contains(&j.name))
        .map(|j| j.name)
}

/// The bootstrap user: creates and updates the bucket and the streams.
pub const INIT: &str = "oms-init";
/// The REST gateway.
pub const GATEWAY: &str = "gateway";
/// The operator (the `nats` CLI): everything.
pub const ADMIN: &str = "admin";

/// Every user name, the operator's last.
pub fn users() -> Vec<&'static str> {
    let mut users: Vec<_> = jobs().iter().map(|j| j.name).collect();
    users.extend([GATEWAY, INIT, ADMIN]);
    users
}

/// The environment variable that holds `user`'s password.
pub fn password_variable(user: &str) -> String {
    format!(
        "OMS_NATS_PASSWORD_{}",
        user.to_ascii_uppercase().replace('-', "_")
    )
}

/// What `user` may publish and subscribe (`None`: the operator, everything).
pub fn permissions(user: &str) -> Option<(Vec<String>, Vec<String>)> {
    let inbox = format!("_INBOX_{user}.>");
    if user == GATEWAY {
        let mut publish: Vec<String> = contract::OPERATIONS
            .iter()
            .filter(|op| op.route.is_some())
            .map(|op| op.subject())
            .collect();
        publish.extend(["$SRV.PING".into(), "$SRV.PING.>".into()]);
        // `/metrics`: the streams' bytes and limits, the dead letters.
        publish.extend(
            ["KV_oms", "OMS_EVENTS", "OMS_DLQ"].map(|s| format!("$JS.API.STREAM.INFO.{s}")),
        );
        return Some((publish, vec![inbox]));
    }
    if user == INIT {
        return Some((vec!["$JS.API.>".into()], vec![inbox]));
    }
    let job = jobs().into_iter().find(|j| j.name == user)?;
    let mut publish = vec![
        "$JS.API.STREAM.INFO.KV_oms".to_string(),
        "$JS.API.STREAM.MSG.GET.KV_oms".into(),
        "$JS.API.DIRECT.GET.KV_oms.>".into(),
    ];
    publish.extend(
        job.writes
            .iter()
            .map(|prefix| format!("$KV.oms.{prefix}.>")),
    );
    publish.extend(job.calls.iter().map(|op| op.subject()));
    if job.follows {
        // Ordered consumers: created (with or without a name in the
        // subject), pulled from, and deleted when re-created.
        for verb in ["CREATE", "MSG.NEXT", "DELETE", "INFO"] {
            publish.push(format!("$JS.API.CONSUMER.{verb}.KV_oms"));
            publish.push(format!("$JS.API.CONSUMER.{verb}.KV_oms.>"));
        }
    }
    publish.extend(job.publishes.iter().map(|s| s.to_string()));
    let mut subscribe = vec![inbox];
    if let Some(op) = job.serves {
        subscribe.push(op.subject());
        // Discovery: `$SRV.<verb>`, `.<name>` and `.<name>.<id>`.
        subscribe.extend([
            "$SRV.*".to_string(),
            format!("$SRV.*.{}", op.service),
            format!("$SRV.*.{}.*", op.service),
        ]);
    }
    Some((publish, subscribe))
}

/// `nats-users.conf`, as `nats-server.conf` includes it.
pub fn render() -> String {
    let list = |subjects: &[String]| {
        subjects
            .iter()
            .map(|s| format!("\"{s}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out = String::from(
        "# Generated from runtime/src/permissions.rs: one user per binary,\n\
         # each allowed what its job needs. Do not edit; after a change there run\n\
         # `OMS_WRITE_USERS=1 cargo test -p oms-runtime --test permissions`.\n\
         # Passwords come from the environment (`just up` keeps them in .run/secrets.env).\n\
         authorization {\n  users: [\n",
    );
    for user in users() {
        let password = password_variable(user);
        match permissions(user) {
            None => out.push_str(&format!(
                "    {{ user: \"{user}\", password: ${password} }}\n"
            )),
            Some((publish, subscribe)) => out.push_str(&format!(
                "    {{ user: \"{user}\", password: ${password}, permissions: {{\n      \
                 publish: {{ allow: [{}] }}\n      \
                 subscribe: {{ allow: [{}] }}\n      \
                 allow_responses: true\n    }} }}\n",
                list(&publish),
                list(&subscribe)
            )),
        }
    }
    out.push_str("  ]\n}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_users_cannot_manage_streams_or_read_other_inboxes() {
        for user in users() {
            let Some((publish, subscribe)) = permissions(user) else {
                assert_eq!(user, ADMIN);
                continue;
            };
            if user != INIT {
                assert!(
                    publish.iter().all(|s| !s.contains("STREAM.CREATE")
                        && !s.contains("STREAM.UPDATE")
                        && !s.contains("STREAM.PURGE")
                        && !s.contains("STREAM.DELETE")
                        && s != "$JS.API.>"
                        && s != ">"),
                    "{user}: {publish:?}"
                );
            }
            let inboxes: Vec<_> = subscribe
                .iter()
                .filter(|s| s.starts_with("_INBOX"))
                .collect();
            assert_eq!(inboxes, [&format!("_INBOX_{user}.>")], "{user}");
        }
    }

    #[test]
    fn the_gateway_reaches_routes_only() {
        let (publish, _) = permissions(GATEWAY).unwrap();
        assert!(publish.contains(&"orders.create".to_string()));
        assert!(!publish
            .iter()
            .any(|s| s == "inventory.reserve" || s.starts_with("$KV")));
    }
}
