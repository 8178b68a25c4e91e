#!/usr/bin/env bash
# Tests the container topology without containers: PostgreSQL (its own cluster), Redis, three
# comanda-api replicas on free loopback ports and nginx in front (Debian's package, foreground,
# with container/nginx-proxy.conf), all under target/cluster/test and torn down at the end, also
# on failure or Ctrl-C. The checks are `cargo xtask cluster test` (crates/xtask/src/cluster):
#   (a) 5 logins per minute per client hold across the replicas together (shared in Redis);
#   (b) X-Forwarded-For cannot be spoofed past the limit; it is believed from nginx only;
#   (c) with Redis frozen and then down, requests are still served within 1 s (fail open), a
#       replica with RATE_LIMIT_FAIL_OPEN=false answers 503, and the limit returns with Redis;
#   (d) clients create and pay orders with Idempotency-Keys while a replica is killed (SIGKILL)
#       and restarted: every acknowledged order and payment exists exactly once, nothing is
#       overpaid (checked through the API and in the database);
#   (e) every replica stops with exit 0 on SIGTERM and logged no ERROR.
# Before them, this script checks container/nginx.conf with nginx -t and container/compose.yaml
# with check_compose.py (when a python3 with PyYAML is at hand). Installs nginx and
# redis-server when missing (as root). Called by scripts/test.sh; takes about 40 s after the
# build. Options go to the checks (e.g. --duration 30 --clients 16, --only ab; see
# cargo xtask cluster test --help).
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib.sh

ensure_system_packages nginx:nginx redis-server:redis-server
target="${CARGO_TARGET_DIR:-target}"
work="$target/cluster/test"

build_test_binaries

# container/nginx.conf as compose runs it, with the replicas' names pointed at loopback and the
# include at the shared file: only the syntax and the directives are checked here (the test
# topology below runs the shared file for real).
mkdir -p "$work"
check="$(cd "$work" && pwd)/nginx-check"
rm -rf "$check"
mkdir -p "$check/logs"
sed -e 's/server api[0-9]:8000/server 127.0.0.1:9/' \
    -e "s#include /etc/nginx/comanda-proxy.conf#include $PWD/container/nginx-proxy.conf#" \
    -e "s#access_log /dev/stdout#access_log $check/logs/access.log#" \
    -e "s#error_log /dev/stderr#error_log $check/logs/error.log#" \
    container/nginx.conf >"$check/nginx.conf"
user_directive=""
[ "$(id -u)" -ne 0 ] || user_directive="user nobody nogroup;"
nginx -t -q -p "$check" -c "$check/nginx.conf" -e "$check/logs/error.log" \
    -g "pid $check/nginx.pid; $user_directive" ||
    die "nginx -t refused container/nginx.conf"

# compose.yaml cannot run here; its wiring is checked statically with PyYAML, from the system's
# python3 or the venv scripts/fuzz.sh makes (nothing is installed for it).
yaml_python=""
for py in python3 "$target/venv/bin/python"; do
    if "$py" -c 'import yaml' >/dev/null 2>&1; then yaml_python="$py"; break; fi
done
if [ -n "$yaml_python" ]; then
    "$yaml_python" scripts/cluster/check_compose.py || die "container/compose.yaml is inconsistent"
else
    say "skipping the static check of container/compose.yaml: no python3 with PyYAML here"
fi

# Whatever happens to the harness (a crash, kill -9), nothing it started stays up.
trap 'cargo xtask cluster cleanup --work "$work" || true' EXIT
cargo xtask cluster test --work "$work" --bin-dir "$target/debug" "$@"
