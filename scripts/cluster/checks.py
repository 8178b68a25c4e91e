#!/usr/bin/env python3
"""The test of the three-replica topology (scripts/cluster/test.sh runs it): it starts
PostgreSQL, Redis, three comanda-api replicas and nginx on loopback ports (topology.py), then
checks through nginx:

  (a) shared login limit: 5 wrong logins per minute per client hold across the three replicas
      together (the 6th is 429), and nginx's access log shows they reached different replicas;
  (b) no spoofing: a client that sends its own X-Forwarded-For still hits its limit; another
      client is not affected; a replica reached directly ignores X-Forwarded-For;
  (c) Redis down: with Redis frozen (SIGSTOP) and then killed, requests keep being served
      (RATE_LIMIT_FAIL_OPEN=true, the default) within a second, a replica configured with
      RATE_LIMIT_FAIL_OPEN=false answers 503, and once Redis is back the shared limit holds again;
  (d) consistency: client threads create orders and pay them, each request with an
      Idempotency-Key and retried with the same key and body after connection errors and
      502/503/504, while one replica is killed with SIGKILL and restarted; afterwards, through
      the API and in the database, every acknowledged order and payment exists exactly once,
      nothing was duplicated by a retry, and no order is overpaid;
  (e) graceful stop: every replica exits 0 on SIGTERM, and no replica logged an ERROR.

Each client uses its own loopback source address (127.0.0.10, 127.0.1.1, ...): to the server
they are different machines, and none of them is the trusted proxy (127.0.0.1, nginx).
Python 3 standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ next to the scripts
sys.path.insert(0, str(Path(__file__).resolve().parent))
from topology import Cluster, Response, TopologyError, http_request, say  # noqa: E402

WAITER_PASSWORD = "cluster waiter password"
ADMIN_PASSWORD = "cluster admin password"
WRONG_PASSWORD = "not the password at all"
LOGIN = "/api/v1/auth/login"


class CheckFailed(AssertionError):
    pass


class Report:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.failures: list[str] = []

    def ok(self, label: str, text: str) -> None:
        line = f"PASS {label} {text}"
        self.lines.append(line)
        print(line, flush=True)

    def info(self, text: str) -> None:
        line = f"     {text}"
        self.lines.append(line)
        print(line, flush=True)

    def fail(self, label: str, text: str) -> None:
        line = f"FAIL {label} {text}"
        self.lines.append(line)
        self.failures.append(line)
        print(line, flush=True)

    def check(self, cond: bool, label: str, text: str) -> bool:
        (self.ok if cond else self.fail)(label, text)
        return cond


def login(port: int, email: str, password: str, source: str, rid: str | None = None,
          forwarded: list[str] | None = None) -> Response:
    headers = [("X-Forwarded-For", f) for f in forwarded or []]
    if rid:
        headers.append(("X-Request-Id", rid))
    return http_request(port, "POST", LOGIN, body={"email": email, "password": password}, headers=headers,
                        source=source)


def token(port: int, email: str, password: str, source: str) -> str:
    r = login(port, email, password, source)
    if r.status != 200:
        raise CheckFailed(f"login of {email} from {source} answered {r.status}: {r.body[:200]!r}")
    return r.json()["access_token"]


def upstreams_of(cluster: Cluster, rid_prefix: str, expected: int) -> list[str]:
    """The replica(s) nginx used for each request whose X-Request-Id starts with rid_prefix.
    nginx writes the line once the response is out, which can be a moment after the client has
    read it: waits up to 2 s for `expected` lines."""
    deadline = time.monotonic() + 2
    while True:
        found = []
        for line in cluster.access_log.read_text(errors="replace").splitlines():
            m = re.search(r"upstream=(\S+) .* rid=(\S+)$", line)
            if m and m.group(2).startswith(rid_prefix):
                found.append(m.group(1))
        if len(found) >= expected or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def replica_name(cluster: Cluster, addr: str) -> str:
    for r in cluster.replicas:
        if addr.endswith(f":{r.port}"):
            return r.name
    return addr


# --------------------------------------------------------------------------------------------
# (a) and (b): the shared limit and spoofing


def check_shared_limit(cluster: Cluster, rep: Report, run: str) -> None:
    port, src = cluster.nginx_port, "127.0.0.10"
    results = [login(port, cluster.admin_email, WRONG_PASSWORD, src, rid=f"a-{run}-{i}") for i in range(1, 7)]
    statuses = [r.status for r in results]
    remaining = [r.header("ratelimit-remaining") or "-" for r in results]
    served_by = upstreams_of(cluster, f"a-{run}-", 6)
    names = [replica_name(cluster, a) for a in served_by]
    rep.info(f"6 wrong logins from {src} through nginx: {' '.join(map(str, statuses))}; "
             f"RateLimit-Remaining {' '.join(remaining)}; served by {' '.join(names)}")
    rep.check(statuses == [401] * 5 + [429], "(a)",
              "the 6th login within the minute is 429 although the logins were spread over the replicas")
    rep.check(results[-1].header("retry-after") is not None
              and "problem+json" in (results[-1].header("content-type") or ""),
              "(a)", f"the 429 is problem+json with Retry-After: {results[-1].header('retry-after')} s")
    rep.check(remaining[:5] == ["4", "3", "2", "1", "0"], "(a)",
              "RateLimit-Remaining counts down 4 3 2 1 0 across replicas: one counter, in Redis")
    rep.check(len(set(served_by)) >= 2 and len(served_by) == 6, "(a)",
              f"nginx's access log shows the 6 logins reached {len(set(served_by))} different replicas")


def check_spoofing(cluster: Cluster, rep: Report, run: str) -> None:
    port, src = cluster.nginx_port, "127.0.0.11"
    # What a client might claim to be, including the trusted proxy itself and a whole chain.
    spoofs = [["203.0.113.1"], ["127.0.0.1"], ["198.51.100.7, 127.0.0.1"], ["not-an-address"], ["::1"],
              ["203.0.113.2"], ["198.51.100.8", "203.0.113.9"], ["127.0.0.12"]]
    results = [login(port, cluster.admin_email, WRONG_PASSWORD, src, rid=f"b-{run}-{i}", forwarded=f)
               for i, f in enumerate(spoofs, 1)]
    statuses = [r.status for r in results]
    rep.info(f"8 wrong logins from {src} through nginx, each with another X-Forwarded-For "
             f"({'; '.join(', '.join(f) for f in spoofs)}): {' '.join(map(str, statuses))}")
    rep.check(statuses == [401] * 5 + [429] * 3, "(b)",
              "a client cannot spoof its way out of the limit with X-Forwarded-For (5 x 401, then 429)")
    seen = upstreams_of(cluster, f"b-{run}-", len(spoofs))
    rep.info(f"served by {' '.join(replica_name(cluster, a) for a in seen)}")

    # The limit is per client, not per proxy: another address, even one a spoofer claimed, starts fresh.
    other = login(port, cluster.admin_email, WRONG_PASSWORD, "127.0.0.12", rid=f"b-{run}-other")
    rep.check(other.status == 401 and other.header("ratelimit-remaining") == "4", "(b)",
              f"another client (127.0.0.12) meanwhile gets {other.status} with RateLimit-Remaining "
              f"{other.header('ratelimit-remaining')}: limits are per client address, not per proxy")

    # Straight to a replica from an untrusted address: X-Forwarded-For is not believed at all.
    direct = cluster.replicas[0]
    results = [login(direct.port, cluster.admin_email, WRONG_PASSWORD, "127.0.0.13", forwarded=[f"192.0.2.{i}"])
               for i in range(1, 7)]
    statuses = [r.status for r in results]
    rep.check(statuses == [401] * 5 + [429], "(b)",
              f"directly to {direct.name} from 127.0.0.13 (untrusted) with 6 different X-Forwarded-For: "
              f"{' '.join(map(str, statuses))}")


# --------------------------------------------------------------------------------------------
# (c) Redis down


def check_redis_outage(cluster: Cluster, rep: Report, run: str, closed) -> None:
    port = cluster.nginx_port
    assert cluster.redis is not None

    def burst(label: str, src: str, n: int = 8) -> tuple[list[int], float]:
        rs = [login(port, cluster.admin_email, WRONG_PASSWORD, src, rid=f"c-{run}-{label}-{i}") for i in range(n)]
        return [r.status for r in rs], max(r.elapsed for r in rs)

    keys = cluster.redis_keys()
    rep.info(f"Redis holds {keys} rate-limit keys before the outage")

    # Frozen: connections are accepted by the kernel but nothing answers (the 250 ms timeout).
    cluster.redis.send(signal.SIGSTOP)
    try:
        statuses, slowest = burst("frozen", "127.0.0.20")
        rep.info(f"Redis frozen (SIGSTOP): 8 wrong logins from 127.0.0.20: {' '.join(map(str, statuses))}, "
                 f"slowest {slowest * 1000:.0f} ms")
        rep.check(statuses == [401] * 8 and slowest < 1.0, "(c)",
                  "with Redis not answering, logins are served (fail open: no 429, no 5xx) within 1 s each")
        r = http_request(closed.port, "POST", LOGIN, body={"email": cluster.admin_email, "password": WRONG_PASSWORD},
                         source="127.0.0.23")
        rep.check(r.status == 503 and r.header("retry-after") is not None and r.elapsed < 1.0, "(c)",
                  f"the replica with RATE_LIMIT_FAIL_OPEN=false answers {r.status} "
                  f"(Retry-After {r.header('retry-after')}) in {r.elapsed * 1000:.0f} ms")
    finally:
        cluster.redis.send(signal.SIGCONT)

    # Gone: connections are refused.
    cluster.redis.stop(signal.SIGKILL, 5)
    statuses, slowest = burst("down", "127.0.0.21")
    rep.info(f"Redis killed: 8 wrong logins from 127.0.0.21: {' '.join(map(str, statuses))}, "
             f"slowest {slowest * 1000:.0f} ms")
    rep.check(statuses == [401] * 8 and slowest < 1.0, "(c)",
              "with Redis down, logins are served (fail open) within 1 s each")
    ok = http_request(port, "GET", "/health/ready", source="127.0.0.21")
    rep.check(ok.status == 200, "(c)", f"/health/ready through nginx stays {ok.status} without Redis")
    r = http_request(closed.port, "POST", LOGIN, body={"email": cluster.admin_email, "password": WRONG_PASSWORD},
                     source="127.0.0.23")
    body = r.json() if r.status == 503 else {}
    rep.check(r.status == 503 and body.get("type") == "/problems/unavailable" and r.elapsed < 1.0, "(c)",
              f"the fail-closed replica answers {r.status} {body.get('type')} in {r.elapsed * 1000:.0f} ms")

    # Back (an empty Redis on the same port): the shared limit holds again.
    cluster.start_redis()
    back = time.monotonic()
    recovered = None
    tries = []
    for attempt in range(1, 6):
        src = f"127.0.0.{30 + attempt}"
        rs = [login(port, cluster.admin_email, WRONG_PASSWORD, src, rid=f"c-{run}-back{attempt}-{i}")
              for i in range(6)]
        statuses = [r.status for r in rs]
        # A response without RateLimit-* headers passed without being counted (fail open).
        uncounted = sum(1 for r in rs if r.header("ratelimit-limit") is None)
        tries.append(f"{src}: {' '.join(map(str, statuses))} ({uncounted} uncounted)")
        if statuses == [401] * 5 + [429]:
            recovered = (attempt, src, statuses, time.monotonic() - back)
            break
        time.sleep(1)
    rep.info("Redis restarted; 6 logins per fresh client until the limit holds: " + "; ".join(tries))
    if recovered:
        attempt, src, statuses, took = recovered
        rep.ok("(c)", f"Redis back: 6 logins from {src} give {' '.join(map(str, statuses))} "
                      f"(shared limit holds again {took:.1f} s after the restart, client {attempt})")
    else:
        rep.fail("(c)", "Redis restarted, but the shared limit did not come back within 5 clients")
    # The fail-closed replica, retried as a client honouring Retry-After would (faster here).
    answers = []
    for _ in range(15):
        r = http_request(closed.port, "POST", LOGIN, body={"email": cluster.admin_email, "password": WRONG_PASSWORD},
                         source="127.0.0.25")
        answers.append(r.status)
        if r.status != 503:
            break
        time.sleep(0.2)
    rep.check(answers[-1] == 401, "(c)",
              f"the fail-closed replica serves again once Redis is back ({' '.join(map(str, answers))}: "
              f"{answers.count(503)} more 503 before it reconnected)")


# --------------------------------------------------------------------------------------------
# (d) consistency while a replica is killed and restarted


RETRYABLE = {502, 503, 504}


@dataclass
class Op:
    """One logical request (an order or a payment), retried with the same key and body."""
    kind: str
    key: str
    body: dict
    attempts: int = 0
    outcome: str = "pending"      # acked | gave-up | refused (409 after a retry) | error
    status: int | None = None
    replayed: bool = False
    resource: dict | None = None
    retry_reasons: list[str] = field(default_factory=list)


@dataclass
class PlacedOrder:
    op: Op
    waiter: int
    plan: str
    id: str | None = None
    total: Decimal | None = None
    payments: list[Op] = field(default_factory=list)


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.orders: list[PlacedOrder] = []
        # Deliberate repeats of acknowledged requests (same key, same body): (kind, same answer?)
        self.repeats: list[tuple[str, bool, str]] = []


def repeat(port: int, path: str, op: Op, auth: str, source: str, stats: Stats) -> None:
    """Sends an acknowledged request again, as a client that lost the answer would: it must be
    answered with the first resource (Idempotent-Replayed: true) and create nothing."""
    try:
        r = http_request(port, "POST", path, body=op.body, source=source, timeout=10,
                         headers=[("Authorization", f"Bearer {auth}"), ("Idempotency-Key", op.key)])
    except Exception as e:  # noqa: BLE001 - a lost repeat proves nothing either way
        with stats.lock:
            stats.repeats.append((op.kind, True, f"not answered: {type(e).__name__}"))
        return
    if r.status in RETRYABLE:
        with stats.lock:
            stats.repeats.append((op.kind, True, f"{r.status}"))
        return
    same = (r.status == 201 and r.header("idempotent-replayed") == "true"
            and r.json().get("id") == (op.resource or {}).get("id"))
    with stats.lock:
        stats.repeats.append((op.kind, same, f"{r.status} replayed={r.header('idempotent-replayed')}"))


def send_with_retry(port: int, path: str, op: Op, auth: str, source: str, deadline_s: float) -> None:
    give_up = time.monotonic() + deadline_s
    while True:
        op.attempts += 1
        try:
            r = http_request(port, "POST", path, body=op.body, source=source, timeout=10,
                             headers=[("Authorization", f"Bearer {auth}"), ("Idempotency-Key", op.key)])
        except (OSError, ConnectionError, TimeoutError) as e:
            reason = type(e).__name__
        except Exception as e:  # http.client.RemoteDisconnected and friends
            reason = type(e).__name__
        else:
            op.status = r.status
            if r.status == 201:
                op.outcome = "acked"
                op.replayed = r.header("idempotent-replayed") == "true"
                op.resource = r.json()
                return
            if r.status in RETRYABLE:
                reason = str(r.status)
            elif r.status == 409 and op.attempts > 1:
                # After a retry, a conflict ("above the balance due", "already paid") says the
                # first attempt may have been recorded: information, checked in the database.
                op.outcome = "refused-after-retry"
                op.resource = r.json()
                return
            else:
                op.outcome = "error"
                op.resource = {"status": r.status, "body": r.body[:300].decode(errors="replace")}
                return
        op.retry_reasons.append(reason)
        if time.monotonic() > give_up:
            op.outcome = "gave-up"
            return
        time.sleep(0.1 + random.random() * 0.2)


def client_thread(cluster: Cluster, stats: Stats, index: int, waiter: int, auth: str, run: str, until: float,
                  deadline_s: float) -> None:
    port = cluster.nginx_port
    source = f"127.0.1.{index + 1}"
    rnd = random.Random(f"{run}-{index}")
    n = 0
    while time.monotonic() < until:
        n += 1
        items = [{"product_name": rnd.choice(["Café", "Tostada", "Zumo", "Croissant", "Agua", "Bocadillo"]) + f" {k}",
                  "unit_price": f"{rnd.randint(1, 2500) / 100:.2f}", "quantity": rnd.randint(1, 4)}
                 for k in range(rnd.randint(1, 3))]
        op = Op("order", f"order-{run}-{index}-{n}", {"customer_name": f"Mesa {index}-{n}", "items": items})
        plan = rnd.choice(["full", "split", "split", "partial"])
        placed = PlacedOrder(op, waiter, plan)
        with stats.lock:
            stats.orders.append(placed)
        send_with_retry(port, "/api/v1/orders", op, auth, source, deadline_s)
        if op.outcome != "acked":
            continue
        placed.id = op.resource["id"]
        placed.total = Decimal(op.resource["total_price"])
        if n % 5 == 0:
            repeat(port, "/api/v1/orders", op, auth, source, stats)
        cents = int(placed.total * 100)
        if plan == "full" or cents < 2:
            amounts = [cents]
        elif plan == "split":
            first = rnd.randint(1, cents - 1)
            amounts = [first, cents - first]
        else:
            amounts = [cents // 2]
        for k, amount in enumerate(amounts, 1):
            pay = Op("payment", f"pay-{run}-{index}-{n}-{k}",
                     {"amount": f"{Decimal(amount) / 100:.2f}", "method": rnd.choice(["cash", "card", "other"])})
            placed.payments.append(pay)
            send_with_retry(port, f"/api/v1/orders/{placed.id}/payments", pay, auth, source, deadline_s)
            if pay.outcome != "acked":
                break
            if n % 5 == 1:
                repeat(port, f"/api/v1/orders/{placed.id}/payments", pay, auth, source, stats)


def check_consistency(cluster: Cluster, rep: Report, run: str, *, clients: int, duration: float,
                      kill_after: float, freeze: float, down_for: float, deadline_s: float) -> None:
    port = cluster.nginx_port
    waiters = []
    for w in range(4):
        email = f"waiter{w}-{run}@cluster.comanda.local"
        uid = cluster.create_user(email, f"Waiter {w}", WAITER_PASSWORD)
        waiters.append((uid, email, token(port, email, WAITER_PASSWORD, f"127.0.2.{w + 1}")))
    admin = token(port, cluster.admin_email, ADMIN_PASSWORD, "127.0.2.100")

    stats = Stats()
    started = time.monotonic()
    until = started + duration
    threads = [threading.Thread(target=client_thread, name=f"client{i}",
                                args=(cluster, stats, i, i % len(waiters), waiters[i % len(waiters)][2], run, until,
                                      deadline_s), daemon=True)
               for i in range(clients)]
    for t in threads:
        t.start()

    victim = cluster.replicas[1]
    time.sleep(kill_after)
    # Frozen first for a moment, so that requests are surely in flight on it when it dies
    # (a replica answers in a few ms: a bare SIGKILL often catches none). nginx has sent them,
    # so it does not pass the POSTs on to another replica: the clients get 503 and retry.
    victim.proc.send(signal.SIGSTOP)
    time.sleep(freeze)
    with stats.lock:
        before = len(stats.orders)
    cluster.kill_replica(victim, signal.SIGKILL)
    killed_at = time.monotonic()
    say(f"froze {victim.name} for {freeze:.1f} s, then killed it (SIGKILL) at {killed_at - started:.1f} s, "
        f"{before} orders in")
    time.sleep(down_for)
    ready_in = cluster.restart_replica(victim)
    restarted_at = time.monotonic()
    log_offset_at_restart = len(cluster.access_log.read_text(errors="replace"))
    say(f"restarted {victim.name} at {restarted_at - started:.1f} s (ready {ready_in:.2f} s after its start)")
    for t in threads:
        t.join(timeout=duration + deadline_s * 4 + 30)
    if any(t.is_alive() for t in threads):
        rep.fail("(d)", "client threads did not finish in time")
    elapsed = time.monotonic() - started

    orders = stats.orders
    order_ops = [o.op for o in orders]
    pay_ops = [p for o in orders for p in o.payments]
    acked = [o for o in orders if o.op.outcome == "acked"]
    acked_pays = [p for p in pay_ops if p.outcome == "acked"]

    def tally(ops: list[Op]) -> str:
        outcomes = Counter(op.outcome for op in ops)
        retried = [op for op in ops if op.attempts > 1]
        reasons = Counter(r for op in ops for r in op.retry_reasons)
        replays = sum(1 for op in ops if op.replayed)
        return (f"sent {len(ops)}, acknowledged {outcomes['acked']}, retried {len(retried)} "
                f"({sum(op.attempts - 1 for op in retried)} extra attempts: "
                f"{', '.join(f'{k} x{v}' for k, v in reasons.most_common()) or 'none'}), "
                f"answered as replays {replays}, refused after a retry {outcomes['refused-after-retry']}, "
                f"gave up {outcomes['gave-up']}, unexpected answers {outcomes['error']}")

    rep.info(f"{clients} clients for {duration:.0f} s through nginx ({elapsed:.1f} s with the tail); "
             f"{victim.name} frozen {freeze:.1f} s then killed (SIGKILL) at {killed_at - started:.1f} s, "
             f"restarted and ready at {restarted_at - started:.1f} s")
    rep.info("orders:   " + tally(order_ops))
    rep.info("payments: " + tally(pay_ops))
    bad_repeats = [r for r in stats.repeats if not r[1]]
    rep.check(not bad_repeats, "(d)",
              f"{sum(1 for r in stats.repeats if r[0] == 'order')} acknowledged orders and "
              f"{sum(1 for r in stats.repeats if r[0] == 'payment')} acknowledged payments sent again on purpose "
              f"(same key and body, any replica) were answered with the first resource, Idempotent-Replayed: true"
              + (f"; wrong: {bad_repeats[:3]}" if bad_repeats else ""))
    errors = [op for op in order_ops + pay_ops if op.outcome == "error"]
    for op in errors[:5]:
        rep.info(f"unexpected: {op.kind} {op.key}: {op.resource}")
    rep.check(not errors, "(d)", "no request got an unexpected answer (only 201, or 502/503/504 and errors that were retried)")
    rep.check(all(op.outcome != "gave-up" for op in order_ops + pay_ops), "(d)",
              f"every request was acknowledged within its {deadline_s:.0f} s retry deadline")
    rep.check(len(acked) >= clients * 5, "(d)", f"{len(acked)} orders acknowledged (at least {clients * 5} expected)")

    # What nginx saw around the kill: POSTs that failed on the victim as it died, and the
    # requests it served once it was back (log lines written after its restart).
    victim_addr = f"127.0.0.1:{victim.port}"
    failed_on_victim = 0
    text = cluster.access_log.read_text(errors="replace")
    for line in text.splitlines():
        m = re.search(r'"POST \S+ HTTP/1.1" (\d+) .* upstream=(\S+)', line)
        if m and victim_addr in m.group(2) and m.group(1) in ("502", "503", "504"):
            failed_on_victim += 1
    after_restart = sum(1 for line in text[log_offset_at_restart:].splitlines()
                        if re.search(r"upstream=\S*" + re.escape(victim_addr), line))
    cut_repeats = sum(1 for r in stats.repeats if not r[2].startswith("201"))
    rep.info(f"nginx: {failed_on_victim} POSTs failed on {victim.name} as it died, answered 503 "
             f"({cut_repeats} of them deliberate repeats, the rest retried above); "
             f"{victim.name} served {after_restart} requests after its restart")
    rep.check(failed_on_victim > 0 or freeze == 0, "(d)",
              f"the kill cut {failed_on_victim} POSTs in flight on {victim.name}, which the clients retried")
    rep.check(after_restart > 0, "(d)", f"nginx sends traffic to {victim.name} again after its restart")

    # ---- through the API ----
    by_id: dict[str, PlacedOrder] = {o.id: o for o in acked}
    rep.check(len(by_id) == len(acked), "(d)",
              f"{len(acked)} acknowledged orders have {len(by_id)} distinct ids (a retry never produced a second order)")

    def expected_paid(o: PlacedOrder) -> tuple[Decimal, Decimal]:
        """(certainly paid, possibly paid) from what the client knows."""
        sure = sum((Decimal(p.resource["amount"]) for p in o.payments if p.outcome == "acked"), Decimal(0))
        maybe = sum((Decimal(p.body["amount"]) for p in o.payments if p.outcome != "acked"), Decimal(0))
        return sure, sure + maybe

    api_problems: list[str] = []
    problems_lock = threading.Lock()
    work = list(by_id.values())

    def verify_worker(k: int) -> None:
        src = f"127.0.3.{k + 1}"
        for o in work[k::8]:
            auth = [("Authorization", f"Bearer {admin}")]
            r = http_request(port, "GET", f"/api/v1/orders/{o.id}", headers=auth, source=src)
            pr = http_request(port, "GET", f"/api/v1/orders/{o.id}/payments", headers=auth, source=src)
            msg = None
            if r.status != 200 or pr.status != 200:
                msg = f"{o.id}: GET answered {r.status}/{pr.status}"
            else:
                body, pays = r.json(), pr.json()
                pays = pays["items"] if isinstance(pays, dict) and "items" in pays else pays
                total, paid, due = (Decimal(body["total_price"]), Decimal(body["amount_paid"]),
                                    Decimal(body["balance_due"]))
                ids = Counter(p["id"] for p in pays)
                acked_ids = [p.resource["id"] for p in o.payments if p.outcome == "acked"]
                sure, maybe = expected_paid(o)
                if total != o.total:
                    msg = f"{o.id}: total {total} != acknowledged {o.total}"
                elif paid > total or due != total - paid:
                    msg = f"{o.id}: amount_paid {paid}, balance_due {due}, total {total}"
                elif sum((Decimal(p["amount"]) for p in pays), Decimal(0)) != paid:
                    msg = f"{o.id}: amount_paid {paid} is not the sum of its payments"
                elif any(ids[i] != 1 for i in acked_ids):
                    msg = f"{o.id}: acknowledged payments not listed exactly once: {dict(ids)}"
                elif any(c != 1 for c in ids.values()):
                    msg = f"{o.id}: a payment is listed twice"
                elif not (sure <= paid <= maybe):
                    msg = f"{o.id}: amount_paid {paid} outside what the client sent ({sure} to {maybe})"
                elif len(ids) > len(o.payments):
                    msg = f"{o.id}: {len(ids)} payments for {len(o.payments)} requests"
                else:
                    want = "paid" if paid == total else "partially_paid" if paid > 0 else "open"
                    if body["status"] != want:
                        msg = f"{o.id}: status {body['status']} with {paid} of {total} paid"
            if msg:
                with problems_lock:
                    api_problems.append(msg)

    vthreads = [threading.Thread(target=verify_worker, args=(k,)) for k in range(8)]
    for t in vthreads:
        t.start()
    for t in vthreads:
        t.join()
    for p in api_problems[:5]:
        rep.info(p)
    rep.check(not api_problems, "(d)",
              f"through the API, each of the {len(by_id)} orders has its acknowledged total, its acknowledged "
              f"payments exactly once, amount_paid = sum of its payments <= total_price, and the right status")

    # Every order of the test's waiters, page by page (the cursor of one replica read by the others).
    listed: Counter[str] = Counter()
    pages = 0
    for uid, _, _ in waiters:
        cursor = None
        while True:
            q = f"/api/v1/orders?waiter_id={uid}&limit=100" + (f"&cursor={cursor}" if cursor else "")
            r = http_request(port, "GET", q, headers=[("Authorization", f"Bearer {admin}")], source="127.0.2.100")
            if r.status != 200:
                rep.fail("(d)", f"listing orders answered {r.status}")
                break
            page = r.json()
            pages += 1
            listed.update(i["id"] for i in page["items"])
            cursor = page.get("next_cursor")
            if not cursor:
                break
    twice = [i for i, c in listed.items() if c != 1]
    rep.check(set(listed) == set(by_id) and not twice, "(d)",
              f"listing the waiters' orders ({pages} pages of 100, any replica) shows {len(listed)} orders, "
              f"each acknowledged one exactly once and no other")

    # ---- in the database ----
    ids_sql = "'{" + ",".join(uid for uid, _, _ in waiters) + "}'::uuid[]"
    db_orders = {row[0]: row for row in cluster.psql(
        f"SELECT id, total_price, amount_paid, status FROM orders WHERE waiter_id = ANY({ids_sql})")}
    db_payments = cluster.psql(
        f"SELECT p.id, p.order_id, p.amount FROM payments p JOIN orders o ON o.id = p.order_id "
        f"WHERE o.waiter_id = ANY({ids_sql})")
    db_keys = cluster.psql(f"SELECT key, resource_id FROM idempotency_keys WHERE user_id = ANY({ids_sql})")
    order_keys = {k: r for k, r in db_keys if k.startswith(f"order-{run}-")}
    pay_keys = {k: r for k, r in db_keys if k.startswith(f"pay-{run}-")}
    acked_keys = {o.op.key for o in acked}

    rep.check(set(db_orders) == set(by_id), "(d)",
              f"database: {len(db_orders)} orders for the test's waiters = the {len(by_id)} acknowledged ones, "
              f"none missing, none extra")
    rep.check(len(order_keys) == len(db_orders) == len(acked_keys)
              and all(order_keys.get(o.op.key) == o.id for o in acked), "(d)",
              f"database: {len(order_keys)} order idempotency keys = {len(db_orders)} orders = "
              f"{len(acked_keys)} distinct acknowledged keys, each key naming its acknowledged order")
    acked_pay_ids = {p.resource["id"] for p in acked_pays}
    db_pay_ids = Counter(row[0] for row in db_payments)
    uncertain = [p for p in pay_ops if p.outcome != "acked"]
    extra = set(db_pay_ids) - acked_pay_ids
    rep.check(acked_pay_ids <= set(db_pay_ids) and all(c == 1 for c in db_pay_ids.values())
              and len(extra) <= len(uncertain), "(d)",
              f"database: {len(db_pay_ids)} payments; the {len(acked_pay_ids)} acknowledged ones each exactly once"
              + (f", {len(extra)} more from {len(uncertain)} requests without an acknowledgement" if uncertain else
                 ", no other"))
    rep.check(len(pay_keys) == len(db_pay_ids) and set(pay_keys.values()) == set(db_pay_ids), "(d)",
              f"database: every payment has its own idempotency key ({len(pay_keys)} keys, "
              f"{len(db_pay_ids)} payments): no payment was recorded twice for one request")
    sums: dict[str, Decimal] = defaultdict(Decimal)
    for _, order_id, amount in db_payments:
        sums[order_id] += Decimal(amount)
    overpaid = [i for i, row in db_orders.items() if Decimal(row[2]) > Decimal(row[1])]
    mismatched = [i for i, row in db_orders.items() if Decimal(row[2]) != sums.get(i, Decimal(0))]
    rep.check(not overpaid and not mismatched, "(d)",
              f"database: no order has amount_paid > total_price ({len(overpaid)}), and amount_paid = the sum of "
              f"its payments for every order ({len(mismatched)} differ)")
    statuses = Counter(row[3] for row in db_orders.values())
    rep.info("database: order statuses " + ", ".join(f"{k} {v}" for k, v in sorted(statuses.items())))


# --------------------------------------------------------------------------------------------


def scan_logs(cluster: Cluster, rep: Report) -> None:
    errors, warns = [], Counter()
    for r in cluster.replicas:
        try:
            text = r.proc.log.read_text(errors="replace")
        except OSError:
            continue
        for line in text.splitlines():
            if '"level":"ERROR"' in line:
                errors.append(f"{r.name}: {line[:300]}")
            elif '"level":"WARN"' in line:
                try:
                    warns[f"{r.name}: {json.loads(line).get('message')}"] += 1
                except ValueError:
                    warns[f"{r.name}: (unparsed)"] += 1
    for w, n in warns.most_common(8):
        rep.info(f"log WARN x{n} {w}")
    for e in errors[:5]:
        rep.info(e)
    rep.check(not errors, "(e)", f"no replica logged an ERROR ({len(errors)})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", required=True)
    parser.add_argument("--bin-dir", required=True)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--duration", type=float, default=15)
    parser.add_argument("--kill-after", type=float, default=4)
    parser.add_argument("--freeze", type=float, default=0.5, help="seconds the victim is frozen before SIGKILL")
    parser.add_argument("--down-for", type=float, default=3)
    parser.add_argument("--deadline", type=float, default=30, help="seconds one request may be retried")
    parser.add_argument("--only", default="abcd", help="which checks to run (default abcd)")
    args = parser.parse_args()

    def on_term(signum, _frame):
        raise SystemExit(f"stopped by signal {signum}")

    # Explicitly, also for SIGINT: a shell starts background jobs with SIGINT ignored, and the
    # topology must come down on Ctrl-C or kill either way.
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    run = uuid.uuid4().hex[:8]
    rep = Report()
    started = time.monotonic()
    settings = {
        "RATE_LIMIT_LOGIN_PER_MINUTE": "5",
        "RATE_LIMIT_PER_MINUTE": "0",
        "SHUTDOWN_TIMEOUT_SECONDS": "5",
        "DATABASE_POOL_SIZE": "8",
        "HTTP_WORKERS": "2",
        "REPORT_ROLLUP_INTERVAL_SECONDS": "5",
    }
    if os.environ.get("RESPONSE_AUDIT_DIR"):
        # Under scripts/test.sh: these answers are searched for leaks with the suite's.
        settings["RESPONSE_AUDIT_DIR"] = os.environ["RESPONSE_AUDIT_DIR"]
    cluster = Cluster(Path(args.work), Path(args.bin_dir), settings=settings, admin_password=ADMIN_PASSWORD)
    exit_codes: dict[str, list[int]] = {}
    try:
        cluster.start()
        # A fourth replica, not behind nginx, that refuses requests when Redis is unavailable.
        closed = cluster.add_replica("api-closed", behind_nginx=False, overrides={"RATE_LIMIT_FAIL_OPEN": "false"})
        cluster.start_replicas([closed])
        setup = time.monotonic() - started
        rep.info(f"topology up in {setup:.1f} s: nginx 127.0.0.1:{cluster.nginx_port} -> "
                 + ", ".join(f"{r.name} :{r.port}" for r in cluster.replicas if r.behind_nginx)
                 + f"; {closed.name} :{closed.port} (RATE_LIMIT_FAIL_OPEN=false, direct); "
                 f"Redis :{cluster.redis_port}; PostgreSQL :{cluster.pg_port}")
        if "a" in args.only:
            check_shared_limit(cluster, rep, run)
        if "b" in args.only:
            check_spoofing(cluster, rep, run)
        if "c" in args.only:
            check_redis_outage(cluster, rep, run, closed)
        if "d" in args.only:
            check_consistency(cluster, rep, run, clients=args.clients, duration=args.duration,
                              kill_after=args.kill_after, freeze=args.freeze, down_for=args.down_for, deadline_s=args.deadline)
        scan_logs(cluster, rep)
    except (CheckFailed, TopologyError) as e:
        rep.fail("(setup)", str(e))
    finally:
        exit_codes = cluster.stop()
    last = {name: codes[-1] if codes else None for name, codes in exit_codes.items()}
    if exit_codes:
        rep.check(all(c == 0 for c in last.values()), "(e)",
                  "SIGTERM: every replica stopped gracefully with exit 0 ("
                  + ", ".join(f"{n} {c}" for n, c in last.items()) + ")")
    total = time.monotonic() - started
    print(f"\n{len(rep.failures)} failed, {sum(1 for line in rep.lines if line.startswith('PASS'))} passed "
          f"in {total:.0f} s; logs in {cluster.work}", flush=True)
    return 1 if rep.failures else 0


if __name__ == "__main__":
    sys.exit(main())
