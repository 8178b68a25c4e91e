#!/usr/bin/env bash
# Runs the container topology without containers, for trying it out: PostgreSQL (its own
# cluster), Redis, three comanda-api replicas on free loopback ports and nginx in front, with the
# service's default settings (Argon2 and rate limits included). Prints nginx's address and the
# admin's password; Ctrl-C stops everything. Data and logs: target/cluster/run (started afresh
# each time). The program is `cargo xtask cluster run` (crates/xtask/src/cluster).
#
#   scripts/cluster/run.sh [--release] [--port 8080]
#
# ADMIN_PASSWORD in the environment sets the admin's password (else one is generated and printed).
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib.sh

profile=debug
args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --release) profile=release ;;
        --port) [ $# -ge 2 ] || die "--port needs a value"; args+=(--port "$2"); shift ;;
        -h | --help) sed -n '2,12p' "$0"; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
    shift
done

ensure_system_packages nginx:nginx redis-server:redis-server
target="${CARGO_TARGET_DIR:-target}"
work="$target/cluster/run"
if [ "$profile" = release ]; then
    cargo build --quiet --release --bin comanda-api --bin db-admin
else
    cargo build --quiet --bin comanda-api --bin db-admin
fi
# Whatever happens to the harness (a crash, kill -9), nothing it started stays up.
trap 'cargo xtask cluster cleanup --work "$work" || true' EXIT
cargo xtask cluster run --work "$work" --bin-dir "$target/$profile" "${args[@]}"
