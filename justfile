# OMS on NATS. `just up` runs everything, `just test` tests it.

set shell := ["bash", "-cu"]

# `just up` builds with the dev profile by default: shared with `just test`
# and a third of the release build's time; OMS_PROFILE=release for optimized
# binaries (what `just bench` measures).
profile := env_var_or_default("OMS_PROFILE", "dev")

# List the recipes.
default:
    @just --list

# Install what is missing, build, start nats-server + every handler + the gateway (Ctrl-C stops all). `just up --tls`: TLS with a local CA.
up *args: build
    scripts/up.sh {{args}}

# Build what `just up` runs (OMS_PROFILE, dev by default): the handlers and the gateway, not the bench or test support.
build: tools
    cargo build --profile {{profile}} -p oms-handlers -p gateway --bins

# Run the whole test suite against real nats-servers on ephemeral ports.
test: tools
    cargo build --workspace --bins
    PATH="{{justfile_directory()}}/.tools/bin:$PATH" cargo test --workspace --no-fail-fast -- --test-threads 4

# Benchmark a fresh stack (own ports): NATS echo limit, every operation over NATS and HTTP (wrk), hot SKU, cold start, growth to BENCH_MAX_ORDERS.
bench:
    scripts/bench.sh

# Like `up`, on a three-node JetStream cluster with three replicas (ports 4222-4224); `just cluster --tls` too.
cluster *args: build
    scripts/up.sh --cluster {{args}}

# Audit the books of the running stack (`just up`): every count against its ledger, reserved against open orders; exit 1 naming each product that disagrees.
verify: build
    scripts/verify.sh

# Stop what `just up` started (when it runs in another terminal or was left behind).
down:
    scripts/down.sh

# Start N more instances of one binary against the running stack, e.g. `just scale inventory-reserve 2`.
scale binary n="1":
    scripts/scale.sh {{binary}} {{n}}

# Install pinned tools (nats-server 2.15.1) into .tools/bin when PATH lacks nats-server >= 2.12.
tools:
    scripts/install-tools.sh >/dev/null

# Print a bearer token for the gateway of `just up` (12 h): `TOKEN=$(just token staff)`, `just token customer c-1`.
token role="staff" sub="":
    @scripts/token.sh {{role}} {{sub}}

# Format, lint, and check for warnings.
check:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
