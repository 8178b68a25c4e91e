#!/usr/bin/env python3
"""Comanda's container topology (container/compose.yaml) as local processes, for machines
without a Docker engine: a PostgreSQL cluster of its own (initdb), `db-admin init`, Redis, three
`comanda-api` replicas on loopback ports sharing one JWT_SECRET and one Redis, and nginx (Debian's
package, as a foreground process) in front of them with container/nginx-proxy.conf.

Everything lives under one work folder (config, data, logs, pid list); nothing is written to
/etc or /var, and everything listens on 127.0.0.1 only.

    topology.py run --work DIR --bin-dir target/debug [--port N]   # serve until Ctrl-C
    topology.py cleanup --work DIR                                  # stop what a crashed run left

Used by scripts/cluster/run.sh and, as a library, by scripts/cluster/checks.py (the test).
Python 3 standard library only.
"""

from __future__ import annotations

import argparse
import grp
import http.client
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PROXY_CONF = REPO / "container" / "nginx-proxy.conf"

# Every setting the binaries read (README's configuration table). Children get exactly these
# (empty = the built-in default), so that neither the caller's environment nor a stray .env in
# a parent folder changes the topology.
SETTINGS = [
    "APP_ENV", "HOST", "PORT", "DATABASE_URL", "DATA_DIR", "DATABASE_POOL_SIZE", "DATABASE_TIMEOUT_MS",
    "DATABASE_STATEMENT_TIMEOUT_MS", "JWT_SECRET", "JWT_TTL_SECONDS", "JWT_ISSUER", "JWT_AUDIENCE", "LOG_FORMAT",
    "RATE_LIMIT_LOGIN_PER_MINUTE", "RATE_LIMIT_PER_MINUTE", "TRUSTED_PROXIES", "REDIS_URL", "RATE_LIMIT_FAIL_OPEN",
    "CORS_ALLOWED_ORIGINS", "ARGON2_MEMORY_KIB", "ARGON2_ITERATIONS", "ARGON2_PARALLELISM", "HASH_WORKERS",
    "HASH_QUEUE", "HTTP_WORKERS", "BLOCKING_THREADS", "SHUTDOWN_TIMEOUT_SECONDS", "IDEMPOTENCY_TTL_HOURS",
    "REPORT_ROLLUP_INTERVAL_SECONDS", "ADMIN_EMAIL", "ADMIN_NAME", "ADMIN_PASSWORD", "RESPONSE_AUDIT_DIR",
    "NEW_USER_PASSWORD", "RUST_LOG", "ORDER_WRITERS", "HASH_PRIORITY", "OTEL_EXPORTER_OTLP_ENDPOINT", "PG_BIN_DIR",
]

# nginx's access log format: which replica ($upstream_addr) served which request (rid=).
LOG_FORMAT = (
    "'$remote_addr [$time_iso8601] \"$request\" $status $body_bytes_sent '\n"
    "        'rt=$request_time upstream=$upstream_addr ustatus=$upstream_status '\n"
    "        'urt=$upstream_response_time xff=\"$http_x_forwarded_for\" rid=$http_x_request_id'"
)


def say(msg: str) -> None:
    print(f"==> {msg}", file=sys.stderr, flush=True)


class TopologyError(RuntimeError):
    pass


# --------------------------------------------------------------------------------------------
# Small helpers


def is_root() -> bool:
    return os.geteuid() == 0


def as_pg(argv: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, its programs run as the user postgres."""
    return ["runuser", "-u", "postgres", "--", *argv] if is_root() else argv


def pg_bin_dir() -> Path:
    env = os.environ.get("PG_BIN_DIR")
    if env and (Path(env) / "initdb").exists():
        return Path(env)
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name), reverse=True) \
        if Path("/usr/lib/postgresql").is_dir() else []
    for d in candidates:
        if all((d / x).exists() for x in ("initdb", "pg_ctl", "postgres")):
            return d
    found = shutil.which("pg_ctl")
    if found:
        return Path(os.path.realpath(found)).parent
    raise TopologyError("PostgreSQL's server programs (initdb, pg_ctl) are missing: apt-get install postgresql")


_taken_ports: set[int] = set()


def free_port() -> int:
    """A free loopback port below the kernel's ephemeral range, so that no outgoing connection
    can be handed the port of a replica while that replica is down (it is restarted on it)."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    hi = low - 1 if low > 12000 else 32767
    for _ in range(1000):
        port = random.randint(10000, hi)
        if port in _taken_ports:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _taken_ports.add(port)
        return port
    raise TopologyError("no free loopback port found")


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    elapsed: float

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json(self):
        return json.loads(self.body or b"null")


def http_request(
    port: int,
    method: str,
    path: str,
    *,
    body=None,
    headers: list[tuple[str, str]] | None = None,
    source: str | None = None,
    timeout: float = 10.0,
) -> Response:
    """One request on a fresh connection (Connection: close) from `source` (a 127.x.y.z address:
    every loopback address is this machine, and the server sees it as the client's address)."""
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout,
                                      source_address=(source, 0) if source else None)
    try:
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
        conn.putrequest(method, path, skip_accept_encoding=True)
        # Several headers of one name (two X-Forwarded-For, say) are allowed on purpose.
        for name, value in headers or []:
            conn.putheader(name, value)
        conn.putheader("Connection", "close")
        if data is not None:
            if not any(n.lower() == "content-type" for n, _ in headers or []):
                conn.putheader("Content-Type", "application/json")
            conn.putheader("Content-Length", str(len(data)))
        conn.endheaders(data)
        resp = conn.getresponse()
        raw = resp.read()
        hdrs = {k.lower(): v for k, v in resp.getheaders()}
        return Response(resp.status, hdrs, raw, time.monotonic() - started)
    finally:
        conn.close()


def wait_for(what: str, check, timeout: float, proc: "Proc | None" = None, interval: float = 0.1) -> float:
    """Polls `check()` until it is true; returns the seconds it took."""
    started = time.monotonic()
    while True:
        try:
            if check():
                return time.monotonic() - started
        except (OSError, http.client.HTTPException):
            pass
        if proc is not None and not proc.alive():
            raise TopologyError(f"{proc.name} exited with {proc.popen.returncode} while waiting for {what}; "
                                f"last lines of {proc.log}:\n{proc.tail()}")
        if time.monotonic() - started > timeout:
            raise TopologyError(f"timed out after {timeout:.0f} s waiting for {what}"
                                + (f"; last lines of {proc.log}:\n{proc.tail()}" if proc else ""))
        time.sleep(interval)


# --------------------------------------------------------------------------------------------
# Processes


@dataclass
class Proc:
    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    cwd: Path
    popen: subprocess.Popen | None = None
    exit_codes: list[int] = field(default_factory=list)

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            # A session of its own: Ctrl-C reaches the controlling script only, which then stops
            # everything in order.
            self.popen = subprocess.Popen(self.argv, env=self.env, cwd=self.cwd, stdin=subprocess.DEVNULL,
                                          stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def send(self, sig: int) -> None:
        if self.alive():
            os.kill(self.pid, sig)

    def wait(self, timeout: float) -> int | None:
        if self.popen is None:
            return None
        try:
            code = self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        return code

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int | None:
        """Signals and waits; SIGKILL when it does not stop in time. Returns the exit code."""
        if self.popen is None:
            return None
        if self.alive():
            os.kill(self.pid, sig)
            if self.wait(timeout) is None:
                os.kill(self.pid, signal.SIGKILL)
                self.wait(5)
        code = self.popen.returncode
        self.exit_codes.append(code)
        return code

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


@dataclass
class Replica:
    name: str
    port: int
    proc: Proc
    behind_nginx: bool


# --------------------------------------------------------------------------------------------
# The topology


class Cluster:
    """PostgreSQL + Redis + N replicas + nginx, all on loopback, all under `work`."""

    def __init__(
        self,
        work: Path,
        bin_dir: Path,
        *,
        replicas: int = 3,
        settings: dict[str, str] | None = None,
        admin_email: str = "admin@cluster.comanda.local",
        admin_password: str | None = None,
        nginx_port: int | None = None,
        pg_fast: bool = True,
    ):
        self.work = work.resolve()
        self.bin_dir = bin_dir.resolve()
        self.api_bin = self.bin_dir / "comanda-api"
        self.admin_bin = self.bin_dir / "db-admin"
        for b in (self.api_bin, self.admin_bin):
            if not b.exists():
                raise TopologyError(f"{b} is missing; build it: cargo build --bin comanda-api --bin db-admin")
        self.replica_count = replicas
        self.settings = settings or {}
        self.admin_email = admin_email
        self.admin_password = admin_password or secrets.token_urlsafe(18)
        self.jwt_secret = secrets.token_urlsafe(48)
        self.pg_fast = pg_fast
        self.pg_bin = pg_bin_dir()
        self.pg_root = self.work / "db"          # like a DATA_DIR: lib.sh's stop_cluster finds postgres/ in it
        self.pg_data = self.pg_root / "postgres"
        self.pg_run = self.pg_root / "postgres-run"
        self.pg_port = free_port()
        self.pg_started = False
        self.redis_port = free_port()
        self.redis: Proc | None = None
        self.nginx_port = nginx_port or free_port()
        self.nginx_dir = self.work / "nginx"
        self.nginx: Proc | None = None
        self.replicas: list[Replica] = []
        self.pids_file = self.work / "pids"

    # -- settings ------------------------------------------------------------------------

    @property
    def database_url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.pg_port}/comanda?connect_timeout=2"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}"

    def base_env(self) -> dict[str, str]:
        env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TZ") if k in os.environ}
        env.update({k: "" for k in SETTINGS})
        env.update({
            "APP_ENV": "development",
            "DATABASE_URL": self.database_url,
            "LOG_FORMAT": "json",
            "ARGON2_MEMORY_KIB": "1024",
            "ARGON2_ITERATIONS": "1",
        })
        env.update(self.settings)
        return env

    def replica_env(self, port: int, overrides: dict[str, str] | None = None) -> dict[str, str]:
        env = self.base_env()
        env.update({
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "JWT_SECRET": self.jwt_secret,
            "REDIS_URL": self.redis_url,
            # Only nginx, which connects from 127.0.0.1, may name the client. The tests' clients
            # connect from other loopback addresses (127.0.0.10, ...), which are not trusted.
            "TRUSTED_PROXIES": "127.0.0.1",
            "RUST_LOG": self.settings.get("RUST_LOG") or "info",
        })
        env.update(overrides or {})
        return env

    # -- pid list (for `cleanup` after a crash) -------------------------------------------

    def _procs(self) -> list[Proc]:
        procs = [r.proc for r in self.replicas]
        procs += [p for p in (self.redis, self.nginx) if p is not None]
        return procs

    def record_pids(self) -> None:
        lines = []
        for p in self._procs():
            if p.alive():
                lines.append(f"{p.pid} {os.path.realpath(p.argv[0])} {p.name}")
        self.pids_file.write_text("\n".join(lines) + "\n")

    # -- PostgreSQL ----------------------------------------------------------------------

    def start_postgres(self) -> None:
        if self.pg_root.exists():
            stop_postgres_dir(self.pg_bin, self.pg_data)
            shutil.rmtree(self.pg_root)
        self.pg_data.mkdir(parents=True)
        self.pg_run.mkdir(parents=True)
        if is_root():
            shutil.chown(self.pg_root, "postgres", "postgres")
            shutil.chown(self.pg_data, "postgres", "postgres")
            shutil.chown(self.pg_run, "postgres", "postgres")
        say(f"initdb {self.pg_data}")
        run(as_pg([str(self.pg_bin / "initdb"), "-D", str(self.pg_data), "-U", "postgres", "--auth=trust",
                   "-E", "UTF8", "--no-locale"]), self.work / "initdb.log")
        conf = [
            f"port = {self.pg_port}",
            "listen_addresses = '127.0.0.1'",
            f"unix_socket_directories = '{self.pg_run}'",
            "max_connections = 100",
        ]
        if self.pg_fast:
            # A test database on a shared machine: no fsync (the test kills replicas, never the
            # database, so durability across a crash of PostgreSQL is not what it checks).
            conf += ["fsync = off", "synchronous_commit = off", "full_page_writes = off"]
        with open(self.pg_data / "postgresql.conf", "a") as f:
            f.write("\n# scripts/cluster/topology.py\n" + "\n".join(conf) + "\n")
        say(f"starting PostgreSQL on 127.0.0.1:{self.pg_port}")
        run(as_pg([str(self.pg_bin / "pg_ctl"), "-D", str(self.pg_data), "-l", str(self.pg_run / "postgres.log"),
                   "-w", "-t", "60", "start"]), self.work / "pg_ctl.log")
        self.pg_started = True

    def psql(self, sql: str) -> list[list[str]]:
        """Rows of a query against the topology's database (fields split on |)."""
        out = subprocess.run(
            [str(self.pg_bin / "psql") if (self.pg_bin / "psql").exists() else "psql", "-X", "-q", "-A", "-t",
             "-F", "|", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(self.pg_port), "-U", "postgres",
             "-d", "comanda", "-c", sql],
            capture_output=True, text=True, timeout=60,
        )
        if out.returncode != 0:
            raise TopologyError(f"psql failed: {out.stderr.strip()}")
        return [line.split("|") for line in out.stdout.splitlines() if line]

    def db_admin(self, *args: str, extra: dict[str, str] | None = None) -> str:
        env = self.base_env()
        env.update(extra or {})
        out = subprocess.run([str(self.admin_bin), *args], env=env, cwd=self.work, capture_output=True, text=True,
                             timeout=120)
        if out.returncode != 0:
            raise TopologyError(f"db-admin {' '.join(args)} failed ({out.returncode}): {out.stderr.strip()}")
        return out.stdout

    def init_database(self) -> None:
        say("db-admin init (database, migrations, first admin)")
        self.db_admin("init", extra={"ADMIN_EMAIL": self.admin_email, "ADMIN_NAME": "Cluster Admin",
                                     "ADMIN_PASSWORD": self.admin_password})

    def create_user(self, email: str, name: str, password: str, role: str = "waiter") -> str:
        out = self.db_admin("create-user", "--email", email, "--name", name, "--role", role,
                            extra={"NEW_USER_PASSWORD": password})
        # "created waiter ana@example.com (01a2...)"
        return out.strip().rsplit("(", 1)[-1].rstrip(")")

    # -- Redis ---------------------------------------------------------------------------

    def start_redis(self) -> None:
        redis_dir = self.work / "redis"
        redis_dir.mkdir(parents=True, exist_ok=True)
        if self.redis is None:
            self.redis = Proc("redis", [shutil.which("redis-server") or "redis-server", "--port", str(self.redis_port),
                                        "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                                        "--dir", str(redis_dir), "--daemonize", "no", "--logfile", ""],
                              env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
                              log=self.work / "logs" / "redis.log", cwd=redis_dir)
        self.redis.start()
        self.record_pids()
        wait_for(f"Redis on 127.0.0.1:{self.redis_port}", self.redis_answers, 15, self.redis)

    def redis_answers(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.redis_port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")

    def redis_keys(self, pattern: str = "comanda:ratelimit:*") -> int:
        """How many keys match (KEYS: fine for a test's few keys)."""
        cmd = f"*2\r\n$4\r\nKEYS\r\n${len(pattern)}\r\n{pattern}\r\n".encode()
        with socket.create_connection(("127.0.0.1", self.redis_port), timeout=1) as s:
            s.sendall(cmd)
            data = s.recv(65536)
        first = data.split(b"\r\n", 1)[0]
        return int(first[1:]) if first.startswith(b"*") else -1

    # -- replicas ------------------------------------------------------------------------

    def add_replica(self, name: str, *, behind_nginx: bool = True, overrides: dict[str, str] | None = None) -> Replica:
        port = free_port()
        proc = Proc(name, [str(self.api_bin)], self.replica_env(port, overrides), self.work / "logs" / f"{name}.log",
                    cwd=self.work)
        replica = Replica(name, port, proc, behind_nginx)
        self.replicas.append(replica)
        return replica

    def start_replicas(self, replicas: list[Replica]) -> None:
        for r in replicas:
            r.proc.start()
        self.record_pids()
        for r in replicas:
            wait_for(f"{r.name} ready on 127.0.0.1:{r.port}", lambda r=r: self.ready(r.port), 60, r.proc)

    def ready(self, port: int) -> bool:
        return http_request(port, "GET", "/health/ready", timeout=2).status == 200

    def kill_replica(self, replica: Replica, sig: int = signal.SIGKILL) -> None:
        replica.proc.send(sig)
        replica.proc.wait(10)

    def restart_replica(self, replica: Replica) -> float:
        """Starts it again on the same port; returns the seconds until it was ready."""
        replica.proc.start()
        self.record_pids()
        return wait_for(f"{replica.name} ready again", lambda: self.ready(replica.port), 60, replica.proc)

    # -- nginx ---------------------------------------------------------------------------

    def nginx_conf(self) -> str:
        servers = "\n".join(f"        server 127.0.0.1:{r.port} max_fails=1 fail_timeout=2s;  # {r.name}"
                            for r in self.replicas if r.behind_nginx)
        d = self.nginx_dir
        user = ""
        if is_root():
            # Workers drop root. Debian has no group "nobody", hence nogroup.
            group = "nogroup"
            try:
                grp.getgrnam(group)
            except KeyError:
                group = "nobody"
            user = f"user nobody {group};\n"
        return f"""# Generated by scripts/cluster/topology.py: container/nginx.conf with local paths and ports.
{user}worker_processes 2;
pid {d}/nginx.pid;
lock_file {d}/nginx.lock;
error_log {d}/logs/error.log warn;

events {{
    worker_connections 1024;
}}

http {{
    log_format comanda {LOG_FORMAT};
    access_log {d}/logs/access.log comanda;
    server_tokens off;
    keepalive_timeout 65s;

    client_body_temp_path {d}/tmp/client_body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;

    upstream comanda {{
        zone comanda 64k;
{servers}
        keepalive 32;
    }}

    server {{
        listen 127.0.0.1:{self.nginx_port};
        include {PROXY_CONF};
    }}
}}
"""

    def start_nginx(self) -> None:
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        if not Path(nginx).exists():
            raise TopologyError("nginx is missing: apt-get install nginx")
        (self.nginx_dir / "logs").mkdir(parents=True, exist_ok=True)
        (self.nginx_dir / "tmp").mkdir(parents=True, exist_ok=True)
        conf = self.nginx_dir / "nginx.conf"
        conf.write_text(self.nginx_conf())
        base = [nginx, "-p", str(self.nginx_dir), "-c", str(conf), "-e", str(self.nginx_dir / "logs" / "error.log")]
        test = subprocess.run([*base, "-t", "-q"], capture_output=True, text=True)
        if test.returncode != 0:
            raise TopologyError(f"nginx -t refused {conf}: {test.stderr.strip()}")
        self.nginx = Proc("nginx", [*base, "-g", "daemon off;"], {"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
                          self.nginx_dir / "logs" / "nginx.out", cwd=self.nginx_dir)
        self.nginx.start()
        self.record_pids()
        wait_for(f"nginx on 127.0.0.1:{self.nginx_port}",
                 lambda: http_request(self.nginx_port, "GET", "/health/ready", timeout=2).status == 200, 20, self.nginx)

    @property
    def access_log(self) -> Path:
        return self.nginx_dir / "logs" / "access.log"

    # -- all of it -----------------------------------------------------------------------

    def start(self) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        # A fresh start: whatever a killed earlier run left running stops, and its logs and
        # state go (its database in start_postgres).
        cleanup(self.work)
        for old in ("logs", "nginx", "redis"):
            shutil.rmtree(self.work / old, ignore_errors=True)
        for old in ("initdb.log", "pg_ctl.log"):
            (self.work / old).unlink(missing_ok=True)
        self.start_postgres()
        self.init_database()
        say(f"starting Redis on 127.0.0.1:{self.redis_port}")
        self.start_redis()
        for i in range(1, self.replica_count + 1):
            self.add_replica(f"api{i}")
        say("starting " + ", ".join(f"{r.name} on 127.0.0.1:{r.port}" for r in self.replicas))
        self.start_replicas(self.replicas)
        say(f"starting nginx on 127.0.0.1:{self.nginx_port}")
        self.start_nginx()

    def stop(self) -> dict[str, list[int]]:
        """Stops everything (nginx, replicas with SIGTERM, Redis, PostgreSQL); returns the exit
        codes of each replica's processes, in order."""
        if self.nginx is not None:
            self.nginx.stop(signal.SIGTERM, 10)
        live = [r for r in self.replicas if r.proc.alive()]
        for r in live:
            r.proc.send(signal.SIGTERM)
        for r in live:
            r.proc.stop(signal.SIGTERM, 20)
        if self.redis is not None:
            self.redis.send(signal.SIGCONT)
            self.redis.stop(signal.SIGTERM, 10)
        if self.pg_started:
            stop_postgres_dir(self.pg_bin, self.pg_data)
            self.pg_started = False
        try:
            self.pids_file.unlink()
        except FileNotFoundError:
            pass
        return {r.name: list(r.proc.exit_codes) for r in self.replicas}

    def __enter__(self) -> "Cluster":
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def run(argv: list[str], log: Path) -> None:
    with open(log, "ab") as out:
        code = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL).returncode
    if code != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        raise TopologyError(f"{' '.join(argv)} failed ({code}):\n{tail}")


def stop_postgres_dir(pg_bin: Path, data: Path) -> None:
    if (data / "postmaster.pid").exists():
        subprocess.run(as_pg([str(pg_bin / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "-t", "30", "stop"]),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def cleanup(work: Path) -> None:
    """After a run that could not clean up (killed): stops the processes it recorded, by pid,
    if they are still the programs it started, then its PostgreSQL."""
    pids_file = work / "pids"
    if pids_file.exists():
        for line in pids_file.read_text().splitlines():
            parts = line.split(maxsplit=2)
            if len(parts) < 2:
                continue
            pid, exe = int(parts[0]), parts[1]
            try:
                if os.path.realpath(f"/proc/{pid}/exe") != exe:
                    continue
                os.kill(pid, signal.SIGCONT)
                os.kill(pid, signal.SIGTERM)
            except (OSError, ProcessLookupError):
                continue
            for _ in range(100):
                if not Path(f"/proc/{pid}").exists() or "Z" in _proc_state(pid):
                    break
                time.sleep(0.1)
            else:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        pids_file.unlink()
    try:
        stop_postgres_dir(pg_bin_dir(), work / "db" / "postgres")
    except TopologyError:
        pass


def _proc_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "Z"


# --------------------------------------------------------------------------------------------
# `run`: serve until Ctrl-C


def serve(args: argparse.Namespace) -> int:
    settings = {
        # The service's defaults (Argon2 included), as in compose.yaml, except the logs' format.
        "ARGON2_MEMORY_KIB": "", "ARGON2_ITERATIONS": "",
        "REPORT_ROLLUP_INTERVAL_SECONDS": "60",
    }
    cluster = Cluster(Path(args.work), Path(args.bin_dir), settings=settings, admin_email=args.admin_email,
                      admin_password=os.environ.get("ADMIN_PASSWORD") or None, nginx_port=args.port or None,
                      pg_fast=False)
    stop = {"now": False}

    def on_signal(signum, _frame):
        stop["now"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with cluster:
        base = f"http://127.0.0.1:{cluster.nginx_port}"
        print(f"""
Comanda: {cluster.replica_count} replicas behind nginx
  address      {base}   (Swagger UI: {base}/docs/)
  admin        {cluster.admin_email} / {cluster.admin_password}
  replicas     {', '.join(f'{r.name} 127.0.0.1:{r.port}' for r in cluster.replicas)}
  Redis        {cluster.redis_url}
  PostgreSQL   psql -h 127.0.0.1 -p {cluster.pg_port} -U postgres comanda
  logs         {cluster.work / 'logs'}, {cluster.nginx_dir / 'logs'}
Ctrl-C stops everything (the data under {cluster.work} is removed at the next start).
""", flush=True)
        while not stop["now"]:
            for r in cluster.replicas:
                if not r.proc.alive():
                    say(f"{r.name} exited with {r.proc.popen.returncode}; see {r.proc.log}")
                    stop["now"] = True
            time.sleep(0.5)
        say("stopping")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_run = sub.add_parser("run", help="start the topology and serve until Ctrl-C")
    p_run.add_argument("--work", required=True)
    p_run.add_argument("--bin-dir", required=True)
    p_run.add_argument("--port", type=int, default=0, help="nginx's port (default: a free one)")
    p_run.add_argument("--admin-email", default="admin@comanda.local")
    p_clean = sub.add_parser("cleanup", help="stop what a killed run left behind")
    p_clean.add_argument("--work", required=True)
    args = parser.parse_args()
    try:
        if args.cmd == "run":
            return serve(args)
        cleanup(Path(args.work))
        return 0
    except TopologyError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
