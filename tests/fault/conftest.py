"""Fixtures of the fault suite (tests/fault), on top of the integration
suite's (tests/integration/conftest.py, loaded here under another module
name so the two conftest modules do not clash): its `migrated` and `db`
fixtures, Db, Worker, base_env, ctl and servers are used as they are.

tests/fault/run.sh starts private servers (tests/servers.sh) and runs
pytest on this folder with Debian's /usr/bin/python3.

Here: a fleet of worker processes that a test can SIGKILL and restart,
with a supervisor that notices a worker that exited on its own (the
runtime's watchdog exits to be restarted) and restarts it like systemd
would, counting it; the scripted Twilio fake (tests/servers/twilio_fake.py,
run by tests/integration/twilio_fake_client.py) that a test can stop and
start on the same port; readers for the SMTP catcher's spool and for
mfa.dead.
"""
import importlib.util
import json
import os
import sys
import threading
import uuid
from collections import Counter

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
_path = os.path.join(os.path.dirname(HERE), "integration", "conftest.py")
_spec = importlib.util.spec_from_file_location("mfa_integration_conftest",
                                               _path)
integ = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = integ
_spec.loader.exec_module(integ)

# Re-exported: fixtures must be names of this module for pytest to see them.
migrated = integ.migrated
db = integ.db
ADMIN_DSN = integ.ADMIN_DSN
AMQP_URL = integ.AMQP_URL
REPO = integ.REPO
Db = integ.Db
Worker = integ.Worker
base_env = integ.base_env
bin_path = integ.bin_path
ctl = integ.ctl
servers = integ.servers

# The Twilio fake's client is shared with tests/integration/test_sms.py;
# no module of that folder has the name of one here.
sys.path.append(os.path.dirname(_path))
from twilio_fake_client import FAKE, TwilioFake  # noqa: E402

SPOOL = os.environ.get("MFA_TEST_SMTP_SPOOL", "")
CONTROL = os.environ.get("MFA_TEST_SMTP_CONTROL", "")

# Retry tiers of 1, 2 and 4 s and a short heartbeat keep the run short.
FAULT_ENV = {
    "MFA_RETRY_DELAYS_SECONDS": "1,2,4",
    "MFA_AMQP_HEARTBEAT_SECONDS": "3",
    "MFA_LOG_LEVEL": "info",
    # the whole run fits in one code life: codes sent early still verify
    "MFA_CODES_TTL_SECONDS": "600",
    "MFA_SMTP_TIMEOUT_SECONDS": "5",
    "MFA_SMS_TIMEOUT_SECONDS": "3",
}


def have(name):
    try:
        bin_path(name)
        return True
    except FileNotFoundError:
        return False


# ---- workers ----------------------------------------------------------------

class Fleet:
    """One process per worker name; kill/start on demand. supervise()
    restarts a worker that exited without being told to, and counts it."""

    def __init__(self, logdir, env):
        self.logdir = logdir
        self.env = env
        self.procs = {}        # name -> Worker (the current process)
        self.all = []          # every Worker ever started
        self.killed = Counter()
        self.exits = []        # (name, returncode, last log line) unplanned
        self.lock = threading.Lock()

    def start(self, name, wait=True, timeout=60):
        w = Worker(name, base_env(**self.env), self.logdir)
        with self.lock:
            self.procs[name] = w
            self.all.append(w)
        w.start(wait=False)
        if wait:
            w.wait_log("broker connected", timeout=timeout)
        return w

    def kill(self, name):
        """SIGKILL: no clean-up, nothing acked that was not yet."""
        with self.lock:
            w = self.procs.pop(name)
        w.kill()
        self.killed[name] += 1

    def supervise(self):
        with self.lock:
            gone = [(n, w) for n, w in self.procs.items()
                    if w.proc.poll() is not None]
        for name, w in gone:
            lines = w.logs().strip().splitlines()
            self.exits.append((name, w.proc.returncode,
                               lines[-1] if lines else ""))
            self.start(name, wait=False)

    def stop_all(self):
        with self.lock:
            procs = list(self.procs.items())
            self.procs = {}
        return {name: w.stop() for name, w in procs}

    def sanitizer_reports(self):
        bad = []
        for w in self.all:
            text = w.logs()
            if "ERROR: AddressSanitizer" in text or "runtime error:" in text:
                bad.append(w.logpath)
        return bad


@pytest.fixture
def make_fleet(tmp_path):
    """make_fleet(env) -> a new Fleet logging under the test's tmp_path;
    what a failed test leaves running is killed afterwards."""
    made = []

    def make(env):
        f = Fleet(str(tmp_path), env)
        made.append(f)
        return f

    yield make
    for f in made:
        with f.lock:
            left = list(f.procs.values())
            f.procs = {}
        for w in left:
            w.kill()


# ---- the Twilio fake --------------------------------------------------------

AC = "AC" + "0123456789abcdef" * 2
FROM = "+15005550006"


@pytest.fixture(scope="session")
def twilio(tmp_path_factory):
    """The fake plus complete SMS settings pointing at it; None when
    mfa-sms or the fake is not there (the suite then runs email only)."""
    if not (have("mfa-sms") and os.path.exists(FAKE)):
        yield None
        return
    fake = TwilioFake(tmp_path_factory.mktemp("twilio-fake"))
    fake.start()
    ctl("settings", "sms", "set", "--client-id", AC, "--from", FROM,
        input="fault-secret-" + uuid.uuid4().hex + "\n", check=True)
    yield fake
    fake.stop()


# ---- the SMTP catcher -------------------------------------------------------

def smtp_control(obj):
    tmp = CONTROL + ".tmp.fault"
    with open(tmp, "w") as f:
        json.dump(obj, f)
    os.replace(tmp, CONTROL)


def spool_by_rcpt():
    """{recipient (lower case): [(meta, raw bytes), ...]} of the spool;
    meta["injected"] names the catcher's failure mode, if one applied."""
    out = {}
    for name in sorted(os.listdir(SPOOL)):
        if not name.endswith(".json") or name.startswith("."):
            continue
        path = os.path.join(SPOOL, name)
        eml = path[:-5] + ".eml"
        if not os.path.exists(eml):
            continue
        with open(path) as f:
            meta = json.load(f)
        with open(eml, "rb") as f:
            raw = f.read()
        for r in meta["rcpt_tos"]:
            out.setdefault(r.lower(), []).append((meta, raw))
    return out


# ---- RabbitMQ ---------------------------------------------------------------

def dead_letters(url):
    """message_id -> (x-mfa-origin, x-mfa-error) of what rests in mfa.dead
    (read, then given back: nothing is taken)."""
    import pika
    out = {}
    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        ch = conn.channel()
        while True:
            m, p, body = ch.basic_get("mfa.dead", auto_ack=False)
            if m is None:
                break
            h = dict(p.headers or {})
            out[p.message_id] = (h.get("x-mfa-origin"), h.get("x-mfa-error"))
    finally:
        conn.close()            # unacked: all back in the queue
    return out


def queue_depths(url, names):
    import pika
    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        ch = conn.channel()
        return {n: ch.queue_declare(n, passive=True).method.message_count
                for n in names}
    finally:
        conn.close()
