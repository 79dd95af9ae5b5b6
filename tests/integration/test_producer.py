"""mfa-publish and libmfa-producer against a real RabbitMQ (and, when they
are built, the real workers).

With no worker running, what mfa-publish sends is read back from the work
queues with pika: the right queue, message_id = event_id, type = routing
key, persistent, application/json, the envelope as the workers will parse
it. With the workers built (mfa-contact-sync, mfa-codes, mfa-email), every
event type goes through them and its effect or reply is checked, and the
C example (example_login) logs a user in with the code from the mail.
mfa-testworker stands in for mfa-codes where only a reply is needed.
Tests purge the queues they read: no consumer of them runs meanwhile.
"""
import json
import os
import re
import socket
import subprocess
import time
import uuid

import pika
import pytest

from conftest import AMQP_URL, REPO, base_env, bin_path

QUEUE_OF = {
    "contact.promoted": "mfa.contact-sync",
    "contact.changed": "mfa.contact-sync",
    "contact.demoted": "mfa.contact-sync",
    "user.email_confirmed": "mfa.contact-sync",
    "login.started": "mfa.login",
    "login.code_requested": "mfa.login",
    "login.code_submitted": "mfa.login",
}
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-"
                     r"[0-9a-f]{12}$")
SPOOL = os.environ.get("MFA_TEST_SMTP_SPOOL", "")


def examples():
    """Valid data for every type of the brief."""
    lid = str(uuid.uuid4())
    cid = "pr-" + uuid.uuid4().hex[:10]
    return {
        "contact.promoted": {"contact_id": cid, "organization_id": "org-1",
                             "display_name": "Jane Doe",
                             "email": "jane@example.com",
                             "phone": "+31 6 12345678", "country": "NL"},
        "contact.changed": {"contact_id": cid, "display_name": "J. Doe"},
        "contact.demoted": {"contact_id": cid},
        "user.email_confirmed": {"contact_id": cid,
                                 "email": "jane@example.com"},
        "login.started": {"login_id": lid, "contact_id": cid,
                          "ip": "203.0.113.9"},
        "login.code_requested": {"login_id": lid, "method": "email"},
        "login.code_submitted": {"login_id": lid, "code": "123456"},
    }


def publish(*args, input=None, timeout=120, env=None):
    e = base_env()
    e.update(env or {})
    r = subprocess.run([bin_path("mfa-publish"), *args], cwd=REPO, env=e,
                       input=input, capture_output=True, text=True,
                       timeout=timeout)
    # `make asan` runs these tests too: a sanitizer report is a failure.
    assert "ERROR: AddressSanitizer" not in r.stderr, r.stderr
    assert "runtime error:" not in r.stderr, r.stderr
    return r


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def built(*names):
    for n in names:
        try:
            bin_path(n)
        except FileNotFoundError:
            return False
    return True


class Queues:
    """Reads the work queues directly (no worker may run meanwhile)."""

    def __init__(self):
        self.conn = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
        self.ch = self.conn.channel()

    def purge(self, *names):
        for n in names or set(QUEUE_OF.values()):
            self.ch.queue_purge(n)

    def depth(self, name):
        return self.ch.queue_declare(name, passive=True).method.message_count

    def drain(self, name):
        """Every message in the queue, taken (one consumer, no round trip
        per message: the bulk test reads 10,000)."""
        out = []
        want = self.depth(name)
        if want == 0:
            return out
        for m, p, body in self.ch.consume(name, auto_ack=True,
                                          inactivity_timeout=2):
            if m is None:
                break
            out.append((m, p, body))
            if len(out) >= want and self.depth(name) == 0:
                break
        self.ch.cancel()
        return out

    def close(self):
        try:
            self.conn.close()
        except Exception:
            pass


@pytest.fixture
def queues():
    # mfa-publish declares the topology, so the queues exist from here on.
    r = publish("contact.demoted", "--data", '{"contact_id":"warm-up"}')
    assert r.returncode == 0, r.stderr
    q = Queues()
    q.purge()
    yield q
    q.purge()
    q.close()


# ---- without workers: what lands in the queues ---------------------------

def test_every_type_lands_in_its_queue_as_the_brief_says(queues):
    data = examples()
    ids = {}
    for etype, d in data.items():
        r = publish(etype, "--data", json.dumps(d))
        assert r.returncode == 0, r.stderr
        ids[etype] = r.stdout.strip()
        assert UUID_RE.match(ids[etype]), r.stdout
    got = {}
    for q in set(QUEUE_OF.values()):
        for m, p, body in queues.drain(q):
            got[p.message_id] = (q, m, p, body)
    assert len(got) == len(data)
    for etype, eid in ids.items():
        q, m, p, body = got[eid]
        assert q == QUEUE_OF[etype], etype
        assert m.exchange == "mfa.events" and m.routing_key == etype
        assert p.message_id == eid
        assert p.type == etype
        assert p.delivery_mode == 2                      # persistent
        assert p.content_type == "application/json"
        assert p.reply_to is None                        # nobody waits
        env = json.loads(body)
        assert env["event_id"] == eid and env["type"] == etype
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$",
                        env["occurred_at"])
        assert env["data"] == data[etype]


def test_data_file_stdin_and_given_event_id(queues, tmp_path):
    f = tmp_path / "data.json"
    f.write_text('{"contact_id": "pr-file"}\n')
    r1 = publish("contact.demoted", "--data-file", str(f))
    eid = str(uuid.uuid4()).upper()
    r2 = publish("contact.demoted", "--data-file", "-", "--event-id", eid,
                 input='{"contact_id": "pr-stdin"}')
    assert r1.returncode == 0 and r2.returncode == 0, r1.stderr + r2.stderr
    assert r2.stdout.strip() == eid.lower()     # the canonical form
    msgs = {p.message_id: json.loads(b) for _, p, b in
            queues.drain("mfa.contact-sync")}
    assert msgs[r1.stdout.strip()]["data"] == {"contact_id": "pr-file"}
    assert msgs[eid.lower()]["data"] == {"contact_id": "pr-stdin"}
    assert msgs[eid.lower()]["event_id"] == eid.lower()


REFUSED = [
    (["login.started", "--data", '{"contact_id":"c1"}'],
     "data.login_id: missing"),
    (["login.started", "--data", '{"login_id":"x","contact_id":"c1"}'],
     "data.login_id: not a UUID"),
    (["login.code_requested", "--data",
      '{"login_id":"%s","method":"fax"}' % uuid.uuid4()],
     "data.method: must be one of"),
    (["contact.promoted", "--data", '{"contact_id":"c1"}'],
     "data.organization_id: missing"),
    (["contact.changed", "--data", '{"contact_id":"c 1"}'],
     "data.contact_id"),
    (["contact.changed", "--data", '{"contact_id":"c1",}'],
     "data: not valid JSON"),
    (["contact.changed", "--data", '["c1"]'], "data: must be a JSON object"),
    (["contact.changed", "--data", '{"contact_id":"c1"}', "--event-id",
      "42"], "event_id: not a UUID"),
    (["contact.exploded", "--data", "{}"], 'unknown event type "contact.exploded"'),
    (["dispatch.code", "--data", "{}"], "unknown event type"),
    (["contact.changed", "--wait", "--data", '{"contact_id":"c1"}'],
     "gets no reply"),
    (["login.started", "--wait=0", "--data", "{}"], "--wait"),
    (["contact.changed", "--data-file", "/nonexistent/x.json"],
     "/nonexistent/x.json: No such file"),
    (["contact.changed", "--data", "{}", "--data-file", "x"], "not both"),
    (["contact.changed", "--lines", "--event-id", str(uuid.uuid4())],
     "--lines"),
    (["contact.changed", "login.started"], "exactly one event TYPE"),
    ([], "exactly one event TYPE"),
    (["contact.changed", "--bogus"], "unknown option"),
]


@pytest.mark.parametrize("args,want", REFUSED,
                         ids=[w[:30] for _, w in REFUSED])
def test_refused_input_names_the_field_and_publishes_nothing(queues, args,
                                                             want):
    r = publish(*args)
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert want in r.stderr, r.stderr
    assert r.stdout == ""
    assert queues.depth("mfa.contact-sync") == 0
    assert queues.depth("mfa.login") == 0


def test_code_never_echoed_in_refusals(queues):
    r = publish("login.code_submitted", "--data",
                '{"login_id":"not-a-uuid","code":"918273"}')
    assert r.returncode == 1
    assert "data.login_id" in r.stderr and "918273" not in r.stderr


def test_broker_down_exit_2_with_a_clear_message():
    port = closed_port()
    url = "amqp://guest:sekrit@127.0.0.1:%d/%%2f" % port
    r = publish("contact.demoted", "--url", url, "--data",
                '{"contact_id":"c1"}', timeout=60)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stdout == ""
    assert ("cannot connect to the broker at amqp://guest:***@127.0.0.1:%d"
            % port) in r.stderr
    assert "sekrit" not in r.stderr
    # Input is checked before the broker: a refusal still says 1.
    r = publish("contact.demoted", "--url", url, "--data", "{}")
    assert r.returncode == 1 and "data.contact_id" in r.stderr
    r = publish("login.started", "--url", url, "--wait=2", "--data",
                json.dumps(examples()["login.started"]))
    assert r.returncode == 2 and "cannot connect" in r.stderr
    r = publish("contact.changed", "--lines", "--url", url,
                input='{"contact_id":"c1"}\n{"contact_id":"c2"}\n')
    assert r.returncode == 2, r.stderr
    assert "cannot connect" in r.stderr and "nothing was published" in r.stderr


def test_unroutable_event_is_an_error_not_silence(queues):
    queues.ch.queue_unbind("mfa.login", "mfa.events", "login.*")
    try:
        r = publish("login.started", "--no-declare", "--data",
                    json.dumps(examples()["login.started"]))
        assert r.returncode == 2, (r.stdout, r.stderr)
        assert "returned event" in r.stderr
        assert "no queue is bound to routing key login.started" in r.stderr
        assert r.stdout == ""
        # Declaring (the default) restores the binding: then it lands.
        r = publish("login.started", "--data",
                    json.dumps(examples()["login.started"]))
        assert r.returncode == 0, r.stderr
        assert queues.depth("mfa.login") == 1
    finally:
        queues.ch.queue_bind("mfa.login", "mfa.events", "login.*")


def test_bulk_10000_lines_every_confirm_received(queues):
    lines = "".join(json.dumps({"contact_id": "bulk-%d" % i,
                                "display_name": "Contact %d" % i}) + "\n"
                    for i in range(10000))
    r = publish("contact.changed", "--lines", input=lines, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "10000 of 10000 events confirmed" in r.stdout
    assert r.stderr == ""                 # no progress: not a terminal
    # Confirmed means enqueued: the depth is exact, at once.
    assert queues.depth("mfa.contact-sync") == 10000
    sample = queues.drain("mfa.contact-sync")
    assert len({p.message_id for _, p, _ in sample}) == 10000
    assert {json.loads(b)["data"]["contact_id"] for _, _, b in sample} == \
        {"bulk-%d" % i for i in range(10000)}
    assert all(p.type == "contact.changed" and p.delivery_mode == 2
               for _, p, _ in sample)


def test_bulk_with_refused_lines_publishes_nothing(queues):
    lines = ['{"contact_id":"ok-%d"}' % i for i in range(100)]
    lines[2] = '{"display_name":"no id"}'        # line 3
    lines[40] = '{"contact_id":"ok", "email": 7}'  # line 41
    lines.insert(10, "")                          # blank: skipped, counted
    r = publish("contact.changed", "--lines", input="\n".join(lines) + "\n")
    assert r.returncode == 1, r.stderr
    assert "line 3: data.contact_id: missing" in r.stderr
    assert "line 42: data.email" in r.stderr
    assert "refused 2 of 100 lines; nothing was published" in r.stderr
    assert queues.depth("mfa.contact-sync") == 0


def test_wait_times_out_cleanly_without_a_worker(queues):
    t0 = time.time()
    r = publish("login.started", "--wait=1", "--data",
                json.dumps(examples()["login.started"]))
    assert r.returncode == 3, (r.stdout, r.stderr)
    assert time.time() - t0 < 30
    eid = r.stdout.strip()
    assert UUID_RE.match(eid)                # published: its id is shown
    assert "no reply to login.started (event %s) within 1000 ms" % eid \
        in r.stderr
    assert "is mfa-codes running?" in r.stderr
    # It is queued for the worker, with a reply_to for the answer (the
    # broker names the direct reply-to channel of the publisher there).
    (m, p, body), = queues.drain("mfa.login")
    assert p.message_id == eid
    assert p.reply_to.startswith("amq.rabbitmq.reply-to.")


def test_wait_prints_the_reply_and_republish_is_idempotent(queues, workers,
                                                           db):
    # mfa-testworker answers {"status":"ok"} to anything on its queue.
    workers("mfa-testworker", MFA_TEST_QUEUE="mfa.login")
    data = json.dumps(examples()["login.started"])
    r = publish("login.started", "--wait=15", "--data", data)
    assert r.returncode == 0, r.stderr
    eid, reply = r.stdout.splitlines()
    assert UUID_RE.match(eid)
    assert json.loads(reply) == {"status": "ok"}
    # Same event_id again (what to do after exit 2): same answer, one effect.
    r = publish("login.started", "--wait=15", "--event-id", eid, "--data",
                data)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [eid, reply]
    assert db.scalar("SELECT count(*) FROM mfa_test.effects "
                     "WHERE event_id = %s", eid) == 1


def test_library_handle_survives_a_broker_restart(workers, db):
    """One handle (as a portal keeps one) across a RabbitMQ restart: the
    next call notices the dead connection, reconnects, and is answered."""
    from conftest import servers
    w = workers("mfa-testworker", MFA_TEST_QUEUE="mfa.login")
    p = subprocess.Popen([bin_path("producer_session"), AMQP_URL], cwd=REPO,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, bufsize=1)

    def do(line):
        p.stdin.write(line + "\n")
        p.stdin.flush()
        status, eid, rest = p.stdout.readline().rstrip("\n").split(" ", 2)
        return int(status), eid, rest

    def started():
        return "call login.started 20000 " + json.dumps(
            examples()["login.started"])

    try:
        st, eid, reply = do(started())
        assert st == 0 and json.loads(reply) == {"status": "ok"}, reply
        servers("restart-rabbitmq")
        w.wait_log("broker connected", timeout=60, count=2)
        st, eid2, reply = do(started())
        assert st == 0 and json.loads(reply) == {"status": "ok"}, reply
        assert eid2 != eid
        st, _, err = do('publish contact.demoted {"contact_id":"c"}')
        assert st == 0, err
        p.stdin.close()
        assert p.wait(timeout=30) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


# ---- through the real workers, when they are built -----------------------

def processed(db, consumer, event_id, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if db.scalar("SELECT count(*) FROM mfa.inbox WHERE consumer = %s "
                     "AND event_id = %s", consumer, event_id):
            return
        time.sleep(0.05)
    raise AssertionError("%s did not process %s" % (consumer, event_id))


def promote_confirmed(db, addr, cid):
    """contact.promoted + user.email_confirmed through mfa-contact-sync."""
    for etype, d in (("contact.promoted",
                      {"contact_id": cid, "organization_id": "org-p",
                       "display_name": "Jane Doe", "email": addr,
                       "phone": "+31 6 12345678"}),
                     ("user.email_confirmed",
                      {"contact_id": cid, "email": addr})):
        r = publish(etype, "--data", json.dumps(d))
        assert r.returncode == 0, r.stderr
        processed(db, "mfa-contact-sync", r.stdout.strip())


def mail_codes(addr):
    """The codes mailed to addr so far, oldest first."""
    import email
    import email.policy
    out = []
    for name in sorted(os.listdir(SPOOL)):
        # not the catcher's ".tmp-*" files, still being written
        if not name.endswith(".json") or name.startswith("."):
            continue
        with open(os.path.join(SPOOL, name)) as f:
            meta = json.load(f)
        eml = os.path.join(SPOOL, name[:-5] + ".eml")
        if addr not in meta["rcpt_tos"] or not os.path.exists(eml):
            continue
        with open(eml, "rb") as f:
            msg = email.message_from_bytes(f.read(),
                                           policy=email.policy.default)
        text = msg.get_body(preferencelist=("plain",)).get_content()
        m = re.search(r"^\s+(\d{6,10})\s*$", text, re.M)
        if m:
            out.append(m.group(1))
    return out


def wait_code(addr, n=1, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        codes = mail_codes(addr)
        if len(codes) >= n:
            return codes[n - 1]
        time.sleep(0.1)
    raise AssertionError("no code mailed to %s" % addr)


@pytest.mark.skipif(not built("mfa-contact-sync"),
                    reason="mfa-contact-sync is not built yet")
def test_contact_events_round_trip_through_contact_sync(workers, db):
    workers("mfa-contact-sync")
    cid = "pr-" + uuid.uuid4().hex[:10]
    addr = "rt-%s@example.com" % uuid.uuid4().hex[:8]
    steps = [
        ("contact.promoted", {"contact_id": cid, "organization_id": "org-p",
                              "display_name": "Jane Doe", "email": addr,
                              "phone": "+31 6 12345678"}),
        ("user.email_confirmed", {"contact_id": cid, "email": addr}),
        ("contact.changed", {"contact_id": cid, "display_name": "Jane D."}),
    ]
    for etype, d in steps:
        r = publish(etype, "--data", json.dumps(d))
        assert r.returncode == 0, r.stderr
        processed(db, "mfa-contact-sync", r.stdout.strip())
    pu = db.one("SELECT * FROM mfa.portal_users WHERE contact_id = %s", cid)
    assert pu["email"] == addr and pu["email_confirmed"] is True
    assert pu["phone_e164"] == "+31612345678"
    assert pu["display_name"] == "Jane D." and pu["enabled"] is True
    r = publish("contact.demoted", "--data", json.dumps({"contact_id": cid}))
    assert r.returncode == 0, r.stderr
    processed(db, "mfa-contact-sync", r.stdout.strip())
    assert db.one("SELECT enabled FROM mfa.portal_users WHERE contact_id = %s",
                  cid)["enabled"] is False


@pytest.mark.skipif(not built("mfa-contact-sync", "mfa-codes", "mfa-email"),
                    reason="mfa-codes / mfa-email are not built yet")
def test_login_events_round_trip_through_codes_and_email(workers, db):
    workers("mfa-contact-sync")
    workers("mfa-codes")
    workers("mfa-email")
    cid = "pr-" + uuid.uuid4().hex[:10]
    addr = "lg-%s@example.com" % uuid.uuid4().hex[:8]
    promote_confirmed(db, addr, cid)
    lid = str(uuid.uuid4())

    def call(etype, **data):
        r = publish(etype, "--wait=20", "--data", json.dumps(data))
        assert r.returncode == 0, r.stderr
        eid, reply = r.stdout.splitlines()
        return json.loads(reply)

    r = call("login.started", login_id=lid, contact_id=cid)
    assert r["status"] == "pending" and r["methods"] == ["email"]
    assert r["login_id"] == lid and "***" in r["email_hint"]
    assert call("login.code_requested", login_id=lid,
                method="email")["status"] == "sent"
    code = wait_code(addr)
    wrong = "0" * len(code) if code != "0" * len(code) else "1" * len(code)
    r = call("login.code_submitted", login_id=lid, code=wrong)
    assert r["status"] == "invalid"
    assert call("login.code_submitted", login_id=lid,
                code=code)["status"] == "verified"


@pytest.mark.skipif(not built("mfa-contact-sync", "mfa-codes", "mfa-email",
                              "example_login"),
                    reason="mfa-codes / mfa-email are not built yet")
def test_example_login_logs_a_user_in(workers, db):
    workers("mfa-contact-sync")
    workers("mfa-codes")
    workers("mfa-email")
    cid = "pr-" + uuid.uuid4().hex[:10]
    addr = "ex-%s@example.com" % uuid.uuid4().hex[:8]
    promote_confirmed(db, addr, cid)
    p = subprocess.Popen([bin_path("example_login"), cid], cwd=REPO,
                         env=base_env(), stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        code = wait_code(addr)    # it asked for the code, now it waits
        out, err = p.communicate(code + "\n", timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, out + err
    assert "Choose Verification Method" in out and "email" in out
    assert "A code was sent by email" in out
    assert "Verified: login complete." in out
    assert code not in out + err
    st = db.one("SELECT status FROM mfa.login_status WHERE contact_id = %s",
                cid)
    assert st["status"] == "verified"
