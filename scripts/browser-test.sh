#!/usr/bin/env bash
# Swagger UI in a real browser: Debian's Chromium, headless, driven by playwright-core
# (scripts/browser/swagger.mjs) loads /docs/, authorizes with the OAuth2 password flow as a
# waiter, runs "Try it out" on create order and expects a 201. Screenshots go to
# target/browser/ (after authorization, after the 201, and on any failure).
# The server runs on loopback with no DATABASE_URL, so it starts its own PostgreSQL under
# target/browser/data. Called by scripts/test.sh. Installs Debian's `chromium` (and node/npm)
# where missing, and playwright-core with npm ci as pinned by scripts/browser/package-lock.json;
# never downloads a browser of its own. BROWSER_TEST_TIMEOUT bounds the browser's run (180 s).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

target="${CARGO_TARGET_DIR:-target}"
work="$target/browser"
chromium=/usr/bin/chromium
# The whole run (build excluded) must finish within this many seconds.
budget="${BROWSER_TEST_TIMEOUT:-180}"

# System packages: Debian's Chromium, and node/npm only if node is absent.
missing=""
[ -x "$chromium" ] || missing="$missing chromium"
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"
missing="$(echo "$missing" | xargs)"
if [ -n "$missing" ]; then
    if [ "$(id -u)" -eq 0 ]; then
        say "installing the system packages the browser test needs: $missing"
        export DEBIAN_FRONTEND=noninteractive
        timeout 600 apt-get update -qq >/dev/null || die "apt-get update failed"
        timeout 900 apt-get install -y -qq $missing >/dev/null || die "apt-get install $missing failed"
    else
        die "these system packages are missing: $missing
       installing them needs root; run:
           sudo apt-get update && sudo apt-get install -y $missing
       and then this script again."
    fi
fi
[ -x "$chromium" ] || die "$chromium is missing after installing the chromium package"
node_major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$node_major" -ge 18 ] || die "node 18 or later is needed (playwright-core 1.61, the last for node 18: Debian 12 has 18); this is node $(node --version)"

# playwright-core, exactly as locked (package-lock.json); it downloads no browser.
say "npm ci in scripts/browser"
timeout 300 npm ci --prefix scripts/browser --no-audit --no-fund --loglevel=error >/dev/null || die "npm ci in scripts/browser failed"

build_test_binaries
server=""
cleanup() {
    if [ -n "$server" ]; then
        kill -TERM "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
    fi
    # The server stops the PostgreSQL it started; this catches a server that died first.
    stop_cluster "$work/data"
}
trap cleanup EXIT
remove_cluster "$work/data"
rm -rf "$work"
mkdir -p "$work"
export DATA_DIR="$work/data" HOST=127.0.0.1 \
    ARGON2_MEMORY_KIB=1024 ARGON2_ITERATIONS=1 \
    JWT_SECRET="browser-secret-browser-secret-browser-secret-0123" \
    LOG_FORMAT=json RUST_LOG=warn
unset DATABASE_URL
waiter_email="waiter@browser.example"
waiter_password="browser waiter password"
timeout 120 "$target/debug/db-admin" migrate >/dev/null || die "db-admin migrate failed"
NEW_USER_PASSWORD="$waiter_password" timeout 60 "$target/debug/db-admin" create-user \
    --email "$waiter_email" --name "Browser Waiter" --role waiter >/dev/null || die "db-admin create-user failed"

start_test_server "$work/server.log"

say "Swagger UI at $base/docs in headless Chromium ($("$chromium" --version 2>/dev/null | head -1))"
status=0
SCREENSHOT_DIR="$work" timeout --kill-after=10 "$budget" \
    node scripts/browser/swagger.mjs "$base" "$waiter_email" "$waiter_password" || status=$?
if [ $status -eq 124 ]; then
    die "the browser test did not finish within ${budget}s; screenshots and logs are in $work"
fi
[ $status -eq 0 ] || die "the browser test failed; screenshots and logs are in $work"
say "Swagger UI passed; screenshots: $(cd "$work" && ls *.png | tr '\n' ' ')"
