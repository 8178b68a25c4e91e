#!/usr/bin/env python3
"""Static checks of container/compose.yaml against container/nginx.conf, for the parts the
process topology cannot exercise (no Docker engine here): the YAML parses, the replicas wait for
the migration, share one JWT secret and one Redis, trust exactly nginx's address, stop after
their shutdown timeout, and nginx mounts and proxies what the configuration names.
Needs PyYAML (scripts/cluster/test.sh runs it with an interpreter that has it, or skips it)."""

import re
import sys
from pathlib import Path

import yaml

root = Path(__file__).resolve().parents[2] / "container"
compose = yaml.safe_load((root / "compose.yaml").read_text())
nginx_conf = (root / "nginx.conf").read_text()
problems = []


def need(cond, text):
    if not cond:
        problems.append(text)


services = compose.get("services", {})
need({"postgres", "redis", "migrate", "nginx"} <= set(services), f"services missing: {sorted(services)}")
apis = sorted(name for name in services if re.fullmatch(r"api\d+", name))
need(len(apis) == 3, f"three api services expected, got {apis}")
nginx = services.get("nginx", {})
nginx_ip = (nginx.get("networks") or {}).get("backend", {}).get("ipv4_address")
need(nginx_ip, "nginx has no fixed address on the backend network")

migrate = services.get("migrate", {})
need(migrate.get("command", [None])[0] == "db-admin", "migrate does not run db-admin")
need(migrate.get("depends_on", {}).get("postgres", {}).get("condition") == "service_healthy",
     "migrate does not wait for a healthy postgres")
need("healthcheck" in services.get("postgres", {}), "postgres has no healthcheck")

secrets = set()
for name in apis:
    svc = services[name]
    env = svc.get("environment", {})
    need(svc.get("depends_on", {}).get("migrate", {}).get("condition") == "service_completed_successfully",
         f"{name} does not wait for migrate to complete")
    need(env.get("REDIS_URL", "").startswith("redis://"), f"{name} has no REDIS_URL")
    need(env.get("TRUSTED_PROXIES") == nginx_ip, f"{name} trusts {env.get('TRUSTED_PROXIES')}, not nginx ({nginx_ip})")
    need(env.get("APP_ENV") == "production", f"{name} does not run with APP_ENV=production")
    secrets.add(env.get("JWT_SECRET"))
    grace = int(str(svc.get("stop_grace_period", "10s")).rstrip("s"))
    need(grace > int(env.get("SHUTDOWN_TIMEOUT_SECONDS", "10")), f"{name}: stop_grace_period not above the shutdown timeout")
    need(re.search(rf"server {name}:8000\b", nginx_conf), f"nginx.conf does not proxy to {name}:8000")
need(len(secrets) == 1 and None not in secrets, "the api services do not share one JWT_SECRET")

mounts = {v.split(":")[1]: v.split(":")[0] for v in nginx.get("volumes", [])}
include = re.search(r"include (\S+);", nginx_conf)
need(mounts.get("/etc/nginx/nginx.conf") == "./nginx.conf", "nginx.conf is not mounted")
need(include and mounts.get(include.group(1)) == "./nginx-proxy.conf",
     "the file nginx.conf includes is not mounted from nginx-proxy.conf")

if problems:
    print("container/compose.yaml:\n  " + "\n  ".join(problems), file=sys.stderr)
    sys.exit(1)
print(f"container/compose.yaml: {len(services)} services; {', '.join(apis)} wait for migrate, share one "
      f"JWT_SECRET and Redis, trust only nginx ({nginx_ip})")
