"""Fixtures for the integration suite: real RabbitMQ, PostgreSQL and SMTP.

scripts/run-integration.sh starts the servers (tests/servers.sh) and exports
their MFA_* environment; these fixtures migrate the database, start worker
processes from the build directory, and talk AMQP with pika.
Run with Debian's /usr/bin/python3 (python3-pika, python3-psycopg2).
"""
import base64
import json
import os
import re
import signal
import subprocess
import time
import uuid
from datetime import datetime, timezone

import pika
import psycopg2
import psycopg2.extras
import pytest

REPO = os.environ.get("MFA_REPO_DIR", os.getcwd())
BUILD = os.environ.get("MFA_BUILD_DIR", os.path.join(REPO, "build"))
ADMIN_DSN = os.environ.get("MFA_POSTGRES_CONNINFO", "")
AMQP_URL = os.environ.get("MFA_AMQP_URL", "")
TEST_DIR = os.environ.get("MFA_TEST_DIR", "")
SERVERS = os.path.join(REPO, "tests", "servers.sh")

if not ADMIN_DSN or not AMQP_URL:
    pytest.skip("integration servers not running (use make test)",
                allow_module_level=True)


def dsn_as(role):
    """The admin conninfo with another user (trust auth in tests)."""
    return re.sub(r"user=\S+", "user=" + role, ADMIN_DSN)


WORKER_DSN = dsn_as("mfa_worker")
MASTER_KEY = base64.b64encode(os.urandom(32)).decode()

# What the session's last test (test_zz_secrets.py) searches for leaks:
# every worker log the fixtures wrote, and every clear code the tests saw.
LOG_PATHS = []
ISSUED_CODES = set()


def record_code(code):
    """Remembers a clear code a test saw (mfa_crypto: opened from or
    sealed into a dispatch job) for the final leak search."""
    if isinstance(code, str) and code.isdigit() and len(code) >= 6:
        ISSUED_CODES.add(code)


def bin_path(name):
    for d in ("bin", "tests"):
        p = os.path.join(BUILD, d, name)
        if os.path.exists(p):
            return p
    raise FileNotFoundError(name)


def base_env(**extra):
    env = dict(os.environ)
    env.update({
        "MFA_KEYS_MASTER_KEY": MASTER_KEY,
        "MFA_POSTGRES_CONNINFO": WORKER_DSN,
        "MFA_RETRY_DELAYS_SECONDS": "1,2",
        "MFA_AMQP_HEARTBEAT_SECONDS": "5",
        "MFA_LOG_LEVEL": "debug",
        "MFA_SMTP_STARTTLS": "off",
    })
    env.update({k: str(v) for k, v in extra.items()})
    return env


def servers(cmd):
    subprocess.run(["sh", SERVERS, cmd, TEST_DIR], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=180)


def ctl(*args, env=None, input=None, check=False, admin=True):
    e = base_env()
    if admin:
        e["MFA_POSTGRES_CONNINFO"] = ADMIN_DSN
    if env:
        e.update(env)
    r = subprocess.run([bin_path("mfactl"), *args], cwd=REPO, env=e,
                       input=input, capture_output=True, text=True,
                       timeout=60)
    if check and r.returncode != 0:
        raise AssertionError("mfactl %s failed: %s%s" % (args, r.stdout, r.stderr))
    return r


@pytest.fixture(scope="session", autouse=True)
def migrated():
    ctl("migrate", check=True)
    with psycopg2.connect(ADMIN_DSN) as c, c.cursor() as cur:
        cur.execute("CREATE SCHEMA IF NOT EXISTS mfa_test")
        cur.execute("CREATE TABLE IF NOT EXISTS mfa_test.effects ("
                    " event_id uuid, at timestamptz DEFAULT now())")
        cur.execute("GRANT USAGE ON SCHEMA mfa_test TO mfa_worker")
        cur.execute("GRANT SELECT, INSERT ON mfa_test.effects TO mfa_worker")
    c.close()


class Db:
    def __init__(self, dsn=ADMIN_DSN):
        self.dsn = dsn

    def rows(self, sql, *params):
        with psycopg2.connect(self.dsn) as c:
            with c.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
                cur.execute(sql, params)
                out = cur.fetchall() if cur.description else []
        c.close()
        return out

    def one(self, sql, *params):
        r = self.rows(sql, *params)
        return r[0] if r else None

    def scalar(self, sql, *params):
        r = self.rows(sql, *params)
        return list(r[0].values())[0] if r else None

    def execute(self, sql, *params):
        self.rows(sql, *params)


@pytest.fixture
def db():
    return Db()


class Worker:
    def __init__(self, name, env, logdir):
        self.name = name
        self.env = env
        self.logpath = os.path.join(logdir, "%s-%s.log" % (name, uuid.uuid4().hex[:6]))
        LOG_PATHS.append(self.logpath)
        self.proc = None

    def start(self, wait=True):
        self.log = open(self.logpath, "ab")
        self.proc = subprocess.Popen([bin_path(self.name)], cwd=REPO,
                                     env=self.env, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        if wait:
            self.wait_log("broker connected")
        return self

    def logs(self):
        with open(self.logpath, "rb") as f:
            return f.read().decode(errors="replace")

    def log_lines(self):
        out = []
        for line in self.logs().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"raw": line})
        return out

    def wait_log(self, text, timeout=30, count=1):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.logs().count(text) >= count:
                return
            if self.proc.poll() is not None:
                raise AssertionError("%s exited %s:\n%s" % (
                    self.name, self.proc.returncode, self.logs()[-3000:]))
            time.sleep(0.05)
        raise AssertionError("%s: no %r in log:\n%s" % (
            self.name, text, self.logs()[-3000:]))

    def stop(self, timeout=40):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode if self.proc else None

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def workers(tmp_path):
    started = []

    def start(name, wait=True, **env):
        w = Worker(name, base_env(**env), str(tmp_path))
        started.append(w)
        return w.start(wait)

    yield start
    for w in started:
        w.stop()
        # no worker may crash or log a sanitizer report during a test
        text = w.logs()
        assert "ERROR: AddressSanitizer" not in text, text[-3000:]
        assert "runtime error:" not in text, text[-3000:]


def delivery(db, did):
    return db.one("SELECT * FROM mfa.deliveries WHERE delivery_id = %s", did)


def wait_delivery(db, did, status, timeout=30):
    deadline = time.time() + timeout
    row = None
    while time.time() < deadline:
        row = delivery(db, did)
        if row and row["status"] == status:
            return row
        time.sleep(0.1)
    raise AssertionError("delivery %s: wanted %s, have %r" % (did, status, row))


def end_delivery_elsewhere(db, did):
    """The delivery ends while its worker still waits on the provider (an
    operator, another copy of the job): its completion must add nothing."""
    db.execute("UPDATE mfa.deliveries SET status = 'dropped', "
               "last_error = 'test: ended elsewhere', finished_at = now() "
               "WHERE delivery_id = %s", did)


def now_rfc3339(offset_s=0):
    t = datetime.now(timezone.utc).timestamp() + offset_s
    return datetime.fromtimestamp(t, timezone.utc).isoformat(
        timespec="milliseconds").replace("+00:00", "Z")


def envelope(etype, data, event_id=None, occurred_at=None):
    return {"event_id": event_id or str(uuid.uuid4()), "type": etype,
            "occurred_at": occurred_at or now_rfc3339(), "data": data}


class Bus:
    """A pika connection that publishes events and collects replies over
    direct reply-to, plus a queue bound to every result."""

    def __init__(self):
        self.conn = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
        self.ch = self.conn.channel()
        self.ch.confirm_delivery()
        self.replies = {}
        self.ch.basic_consume("amq.rabbitmq.reply-to", self._on_reply,
                              auto_ack=True)
        r = self.ch.queue_declare("", exclusive=True)
        self.results_q = r.method.queue
        for ex, kind in (("mfa.results", "topic"), ("mfa.events", "topic")):
            self.ch.exchange_declare(ex, kind, durable=True)
        self.ch.queue_bind(self.results_q, "mfa.results", "#")

    def _on_reply(self, ch, method, props, body):
        self.replies[props.correlation_id] = json.loads(body)

    def publish(self, etype, data, event_id=None, reply=True, raw=None,
                occurred_at=None, amqp_type=None):
        env = envelope(etype, data, event_id, occurred_at)
        body = raw if raw is not None else json.dumps(env).encode()
        props = pika.BasicProperties(
            content_type="application/json", delivery_mode=2,
            message_id=env["event_id"], type=amqp_type or etype,
            reply_to="amq.rabbitmq.reply-to" if reply else None)
        self.ch.basic_publish("mfa.events", etype, body, props, mandatory=True)
        return env["event_id"]

    def wait_reply(self, event_id, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if event_id in self.replies:
                return self.replies.pop(event_id)
            self.conn.process_data_events(time_limit=0.05)
        raise AssertionError("no reply for %s" % event_id)

    def call(self, etype, data, **kw):
        return self.wait_reply(self.publish(etype, data, **kw))

    def results(self, timeout=5, want=None, match=None):
        """Collects result events; stops early once `want` of them match."""
        out = []
        deadline = time.time() + timeout
        while time.time() < deadline:
            m, p, body = self.ch.basic_get(self.results_q, auto_ack=True)
            if m is None:
                if want is not None and len(out) >= want:
                    break
                self.conn.process_data_events(time_limit=0.05)
                continue
            ev = json.loads(body)
            if match is None or match(ev):
                out.append(ev)
                if want is not None and len(out) >= want:
                    break
        return out

    def dead(self, pred=None, timeout=10, want=1):
        """Reads mfa.dead (requeueing what it does not take)."""
        out = []
        deadline = time.time() + timeout
        while time.time() < deadline and len(out) < want:
            seen = []
            while True:
                m, p, body = self.ch.basic_get("mfa.dead", auto_ack=False)
                if m is None:
                    break
                hdr = dict(p.headers or {})
                item = {"body": body, "headers": hdr, "props": p}
                if pred is None or pred(item):
                    self.ch.basic_ack(m.delivery_tag)
                    out.append(item)
                else:
                    seen.append(m.delivery_tag)
            for t in seen:
                self.ch.basic_nack(t, requeue=True)
            if len(out) < want:
                self.conn.process_data_events(time_limit=0.2)
        return out

    def queue_depth(self, name):
        r = self.ch.queue_declare(name, passive=True)
        return r.method.message_count

    def close(self):
        try:
            self.conn.close()
        except Exception:
            pass


@pytest.fixture
def bus():
    b = Bus()
    yield b
    b.close()
