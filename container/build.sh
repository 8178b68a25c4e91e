#!/usr/bin/env bash
# Builds Comanda's image from container/Dockerfile (BuildKit), with the OCI labels filled in.
#
#   container/build.sh                 # tags comanda:<version from Cargo.toml> and comanda:local
#   IMAGE=registry.example.com/comanda container/build.sh --push
#
# Options after the first are passed to `docker build` (e.g. --platform linux/amd64, --no-cache).
# Needs a Docker engine (or a remote one through DOCKER_HOST); docker compose builds the same
# image by itself (container/compose.yaml).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

image="${IMAGE:-comanda}"
push=0
args=()
for arg in "$@"; do
    case "$arg" in
        --push) push=1 ;;
        -h | --help) sed -n '2,10p' "$0"; exit 0 ;;
        *) args+=("$arg") ;;
    esac
done

command -v docker >/dev/null 2>&1 || die "docker is not installed (no Docker? scripts/cluster/run.sh runs the same topology without containers)"
docker info >/dev/null 2>&1 || die "no Docker engine answers (docker info failed); start one or set DOCKER_HOST"

version="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)"
[ -n "$version" ] || die "could not read the version from Cargo.toml"
revision="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
if [ "$revision" != unknown ] && [ -n "$(git status --porcelain 2>/dev/null)" ]; then
    revision="$revision-dirty"
fi
created="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
# Without any user:token@ part, which must never end up in a label.
source_url="$(git remote get-url origin 2>/dev/null | sed -E 's#//[^/@]*@#//#' || true)"
[ -n "$source_url" ] || source_url=unknown

say "building $image:$version ($revision)"
DOCKER_BUILDKIT=1 docker build \
    --file container/Dockerfile \
    --build-arg VERSION="$version" \
    --build-arg REVISION="$revision" \
    --build-arg CREATED="$created" \
    --build-arg SOURCE="$source_url" \
    --tag "$image:$version" \
    --tag "$image:local" \
    "${args[@]}" \
    .
if [ "$push" = 1 ]; then
    say "pushing $image:$version"
    docker push "$image:$version"
fi
say "built $image:$version (also $image:local); run it with docker compose -f container/compose.yaml up -d"
