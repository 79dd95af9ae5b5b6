"""mfactl status, dlq, user show and metrics against the real servers.

The workers are the real ones when build/bin has them (and they start),
otherwise mfa-testworker consuming each queue (MFA_TEST_QUEUE): status
only cares that every work queue has a consumer, and any worker of the
runtime dead-letters an invalid event the same way. The RabbitMQ broker is
shared with the other test modules, so each test first lets the queues
drain and empties mfa.dead, and compares database figures before and after
rather than absolute numbers.
"""
import json
import math
import os
import re
import time
import uuid

import pika
import pytest

from conftest import AMQP_URL, BUILD, ctl, dsn_as

WORK = ["mfa.contact-sync", "mfa.login", "mfa.dispatch.email",
        "mfa.dispatch.sms"]
REAL = {"mfa.contact-sync": "mfa-contact-sync", "mfa.login": "mfa-codes",
        "mfa.dispatch.email": "mfa-email", "mfa.dispatch.sms": "mfa-sms"}
DELAYS = [1, 2]  # conftest.base_env: MFA_RETRY_DELAYS_SECONDS=1,2
RETRY = ["%s.retry.%ds" % (q, d) for q in WORK for d in DELAYS]
ALL_QUEUES = [x for q in WORK for x in
              [q] + ["%s.retry.%ds" % (q, d) for d in DELAYS]] + ["mfa.dead"]
OPERATOR = {"MFA_POSTGRES_CONNINFO": dsn_as("mfa_operator")}


def start_consumer(workers, queue):
    """The real worker of queue if it is built and starts, else the test
    worker on that queue."""
    real = REAL[queue]
    if os.path.exists(os.path.join(BUILD, "bin", real)):
        try:
            return workers(real)
        except AssertionError:
            pass  # not configured for this environment: not our subject
    return workers("mfa-testworker", MFA_TEST_QUEUE=queue)


def depth(bus, q):
    return bus.queue_depth(q)


def settle(bus, queues=WORK + RETRY, timeout=20):
    """Waits until the given queues are empty twice in a row (leftovers of
    other modules consumed or dead-lettered), then empties mfa.dead."""
    deadline = time.time() + timeout
    calm = 0
    while time.time() < deadline and calm < 2:
        calm = calm + 1 if all(depth(bus, q) == 0 for q in queues) else 0
        time.sleep(0.3)
    bus.ch.queue_purge("mfa.dead")


def wait_depth(bus, q, pred, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        n = depth(bus, q)
        if pred(n):
            return n
        time.sleep(0.1)
    raise AssertionError("%s: depth %d" % (q, depth(bus, q)))


def publish_dead(bus, origin, error, event_id=None, body=b'{"x": 1}',
                 mtype="login.started"):
    """A dead letter as the runtime writes it (batch.c)."""
    eid = event_id or str(uuid.uuid4())
    bus.ch.basic_publish("", "mfa.dead", body, pika.BasicProperties(
        content_type="application/json", delivery_mode=2, message_id=eid,
        type=mtype, headers={"x-mfa-error": error, "x-mfa-origin": origin,
                             "x-mfa-dead-at": int(time.time())}),
        mandatory=True)
    return eid


def take(bus, queue, event_id, timeout=5):
    """Gets (and acks) the message with this id from queue; the others
    are given back."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        held, found = [], None
        while True:
            m, p, body = bus.ch.basic_get(queue, auto_ack=False)
            if m is None:
                break
            if p.message_id == event_id and found is None:
                bus.ch.basic_ack(m.delivery_tag)
                found = (p, body)
            else:
                held.append(m.delivery_tag)
        for t in held:
            bus.ch.basic_nack(t, requeue=True)
        if found:
            return found
        time.sleep(0.1)
    return None


def status_json(env=None):
    r = ctl("status", "--json", env=env)
    return r.returncode, json.loads(r.stdout), r


# ---------------------------------------------------------------- status

def test_status_healthy_then_dead_letter_then_no_consumer(workers, bus):
    started = {q: start_consumer(workers, q) for q in WORK}
    settle(bus)

    rc, st, r = status_json()
    assert rc == 0, r.stdout + r.stderr
    assert st["healthy"] is True and st["problems"] == []
    assert st["broker"] == "ok" and st["database"] == "ok"
    assert [q["name"] for q in st["queues"]] == ALL_QUEUES
    for q in st["queues"]:
        assert q["exists"] is True
        assert q["kind"] == ("work" if q["name"] in WORK else
                             "dead" if q["name"] == "mfa.dead" else "retry")
        assert q["unacked"] is None        # not knowable over AMQP
        assert isinstance(q["ready"], int)
        if q["kind"] == "work":
            assert q["consumers"] >= 1, q
    assert [q["ready"] for q in st["queues"] if q["name"] == "mfa.dead"] == [0]
    assert st["deliveries"]["window_seconds"] == 3600
    for ch in ("email", "sms"):
        d = st["deliveries"][ch]
        assert set(d) == {"total", "queued", "sent", "failed", "retried",
                          "dropped", "median_seconds", "p95_seconds"}
    assert isinstance(st["sms"]["configured"], bool)

    table = ctl("status")
    assert table.returncode == 0
    assert "status: healthy" in table.stdout
    for q in ALL_QUEUES:
        assert re.search(r"^%s\s" % re.escape(q), table.stdout, re.M), q
    assert "not visible over AMQP" in table.stdout

    # an invalid event is dead-lettered: needs attention
    eid = str(uuid.uuid4())
    bus.publish("contact.changed", {}, event_id=eid, raw=b"not json",
                reply=False)
    wait_depth(bus, "mfa.dead", lambda n: n >= 1)
    rc, st, r = status_json()
    assert rc == 1
    assert st["healthy"] is False
    assert any("mfa.dead" in p and "dead letter" in p for p in st["problems"])
    table = ctl("status")
    assert table.returncode == 1
    assert "NEEDS ATTENTION" in table.stdout
    bus.ch.queue_purge("mfa.dead")
    assert ctl("status").returncode == 0

    # a work queue without a consumer: needs attention
    started["mfa.login"].stop()
    wait = time.time() + 10
    while time.time() < wait and bus.ch.queue_declare(
            "mfa.login", passive=True).method.consumer_count > 0:
        time.sleep(0.1)
    rc, st, r = status_json()
    assert rc == 1
    assert "mfa.login: no consumers (0 messages waiting)" in st["problems"]
    login = [q for q in st["queues"] if q["name"] == "mfa.login"][0]
    assert login["consumers"] == 0
    assert "mfa.login: no consumers" in ctl("status").stdout


def test_status_counts_the_last_hours_deliveries(db):
    before = status_json()[1]["deliveries"]
    cid = "ctl-st-%s" % uuid.uuid4().hex[:8]
    db.execute("INSERT INTO mfa.users (contact_id, organization_id) "
               "VALUES (%s, 'org')", cid)
    rows = [  # channel, status, attempts, age s, sent after s
        ("email", "sent", 1, 30, 2),
        ("email", "sent", 2, 20, 4),
        ("email", "failed", 1, 10, None),
        ("sms", "dropped", 0, 10, None),
        ("sms", "failed", 2, 10, None),
        ("email", "sent", 1, 7200, 1),   # older than the window
    ]
    for ch, stt, att, age, sent in rows:
        db.execute("INSERT INTO mfa.deliveries (delivery_id, contact_id, "
                   "channel, kind, status, attempts, created_at, sent_at) "
                   "VALUES (%s, %s, %s, 'notice', %s, %s, "
                   "now() - make_interval(secs => %s), "
                   "now() - make_interval(secs => %s) "
                   "  + make_interval(secs => %s))",
                   str(uuid.uuid4()), cid, ch, stt, att, age, age,
                   sent if sent is not None else 0)
    # rows without sent_at (the failed/dropped ones)
    db.execute("UPDATE mfa.deliveries SET sent_at = NULL WHERE contact_id = "
               "%s AND status <> 'sent'", cid)
    after = status_json()[1]["deliveries"]

    def delta(ch, k):
        return after[ch][k] - before[ch][k]
    assert delta("email", "total") == 3
    assert delta("email", "sent") == 2
    assert delta("email", "failed") == 1
    assert delta("email", "retried") == 1
    assert delta("sms", "total") == 2
    assert delta("sms", "dropped") == 1
    assert delta("sms", "failed") == 1
    assert delta("sms", "retried") == 1
    assert after["email"]["median_seconds"] is not None
    assert after["email"]["p95_seconds"] >= after["email"]["median_seconds"]
    # the same figures as an operator, through the operator views
    rc, st, r = status_json(env=OPERATOR)
    assert st["database"] == "ok", r.stderr
    assert st["deliveries"] == after


def test_status_unreachable_broker_exits_1():
    rc, st, r = status_json(env={"MFA_AMQP_URL":
                                 "amqp://guest:guest@127.0.0.1:1/%2f"})
    assert rc == 1
    assert st["healthy"] is False and st["broker"] != "ok"
    assert st["queues"] == []
    assert any(p.startswith("broker:") for p in st["problems"])


# ---------------------------------------------------------------- dlq

def test_dlq_list_shows_reason_and_never_the_body(workers, bus):
    start_consumer(workers, "mfa.contact-sync")
    settle(bus, ["mfa.contact-sync"])
    eid = str(uuid.uuid4())
    secret_body = b"not json jane@example.com 123456"
    bus.publish("contact.changed", {}, event_id=eid, raw=secret_body,
                reply=False)
    wait_depth(bus, "mfa.dead", lambda n: n == 1)

    r = ctl("dlq", "list")
    assert r.returncode == 0, r.stderr
    line = [x for x in r.stdout.splitlines() if eid in x]
    assert len(line) == 1, r.stdout
    assert "contact.changed" in line[0]
    assert "mfa.contact-sync" in line[0]
    assert "invalid event: body: not valid JSON" in line[0]
    assert re.search(r"\s\d+s\s", line[0])           # its age
    assert "jane@example.com" not in r.stdout and "123456" not in r.stdout
    assert "mfa.dead: 1 dead letter" in r.stdout
    # listing does not consume, twice in a row
    assert ctl("dlq", "list").stdout.count(eid) == 1
    assert depth(bus, "mfa.dead") == 1

    j = json.loads(ctl("dlq", "list", "--json").stdout)
    assert j["queue"] == "mfa.dead" and j["total"] == 1
    m = j["messages"][0]
    assert m["event_id"] == eid and m["origin"] == "mfa.contact-sync"
    assert m["type"] == "contact.changed"
    assert m["reason"].startswith("invalid event:")
    assert 0 <= m["age_seconds"] < 60 and m["dead_at"] > 0
    assert "body" not in m
    assert depth(bus, "mfa.dead") == 1


def test_dlq_list_limit_keeps_order(bus):
    bus.ch.queue_purge("mfa.dead")
    ids = [publish_dead(bus, "mfa.login", "test: %d" % i) for i in range(5)]
    r = ctl("dlq", "list", "--limit", "3")
    assert r.returncode == 0
    shown = [i for i in ids if i in r.stdout]
    assert shown == ids[:3]
    assert "3 of 5 shown" in r.stdout
    # all five still there, in their order
    r = ctl("dlq", "list")
    pos = [r.stdout.index(i) for i in ids]
    assert pos == sorted(pos)
    assert depth(bus, "mfa.dead") == 5
    assert ctl("dlq", "list", "--limit", "0").returncode == 2
    bus.ch.queue_purge("mfa.dead")


def test_dlq_replay_puts_it_back_on_its_origin_once(workers, bus):
    w = start_consumer(workers, "mfa.contact-sync")
    settle(bus, ["mfa.contact-sync"])
    eid = str(uuid.uuid4())
    body = b"not json either"
    bus.publish("contact.changed", {}, event_id=eid, raw=body, reply=False)
    wait_depth(bus, "mfa.dead", lambda n: n == 1)
    w.stop()                          # so the replay stays in the queue
    other = publish_dead(bus, "mfa.login", "test: other")
    base = depth(bus, "mfa.contact-sync")

    r = ctl("dlq", "replay", eid)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "replayed %s" % eid in r.stdout and "mfa.contact-sync" in r.stdout
    assert depth(bus, "mfa.dead") == 1            # only the other one left
    assert depth(bus, "mfa.contact-sync") == base + 1
    got = take(bus, "mfa.contact-sync", eid)
    assert got is not None
    props, b = got
    assert b == body                              # the event as it came
    assert props.type == "contact.changed" and props.delivery_mode == 2
    assert "x-mfa-error" not in (props.headers or {})
    assert "x-mfa-attempt" not in (props.headers or {})   # a fresh budget

    # once: a second replay finds nothing and changes nothing
    r = ctl("dlq", "replay", eid)
    assert r.returncode == 1 and "no dead letter" in r.stderr
    j = json.loads(ctl("dlq", "list", "--json").stdout)
    assert [m["event_id"] for m in j["messages"]] == [other]
    bus.ch.queue_purge("mfa.dead")


def test_dlq_replay_all_only_to_work_queues(bus):
    bus.ch.queue_purge("mfa.dead")
    good = publish_dead(bus, "mfa.login", "test: good")
    forged = publish_dead(bus, "mfa.results", "test: forged origin")
    base = depth(bus, "mfa.login")
    r = ctl("dlq", "replay", "--all")
    assert r.returncode == 1                       # one was left behind
    assert "1 replayed, 1 left in mfa.dead" in r.stdout
    assert "not a work queue" in r.stderr
    assert depth(bus, "mfa.dead") == 1
    assert depth(bus, "mfa.login") == base + 1
    assert take(bus, "mfa.login", good) is not None
    j = json.loads(ctl("dlq", "list", "--json").stdout)
    assert [m["event_id"] for m in j["messages"]] == [forged]
    bus.ch.queue_purge("mfa.dead")


def test_dlq_purge_asks_unless_yes(bus):
    bus.ch.queue_purge("mfa.dead")
    for i in range(2):
        publish_dead(bus, "mfa.login", "test: purge %d" % i)
    r = ctl("dlq", "purge", input="no\n")
    assert r.returncode == 1 and "not purged" in r.stderr
    assert "Delete 2 dead letters" in r.stderr
    assert depth(bus, "mfa.dead") == 2
    r = ctl("dlq", "purge", input="")                 # no answer is a no
    assert r.returncode == 1 and depth(bus, "mfa.dead") == 2
    r = ctl("dlq", "purge", input="yes\n")
    assert r.returncode == 0 and "purged 2 dead letters" in r.stdout
    assert depth(bus, "mfa.dead") == 0
    publish_dead(bus, "mfa.login", "test: purge 3")
    r = ctl("dlq", "purge", "--yes")
    assert r.returncode == 0 and "purged 1 dead letter" in r.stdout
    assert depth(bus, "mfa.dead") == 0
    assert ctl("dlq", "purge", "--yes").stdout.strip() == "mfa.dead is empty"


# ---------------------------------------------------------------- user show

def test_user_show_masks_and_explains_the_methods(db):
    cid = "ctl-u-%s" % uuid.uuid4().hex[:8]
    lid = str(uuid.uuid4())
    db.execute("INSERT INTO mfa.users (contact_id, organization_id, "
               "display_name, email, email_status, email_confirmed, "
               "phone_e164, phone_status, phone_type, phone_sms_capable, "
               "phone_sms_blocked) VALUES (%s, 'org-7', 'Jane Doe', "
               "'jane.doe@example.com', 'valid', true, '+31612345678', "
               "'valid', 'mobile', true, '21610 unsubscribed')", cid)
    db.execute("INSERT INTO mfa.logins (login_id, contact_id, status, "
               "methods, expires_at, max_attempts, tries, sends) VALUES "
               "(%s, %s, 'code_sent', ARRAY['email'], "
               "now() + interval '10 min', 5, 2, 1)", lid, cid)
    db.execute("INSERT INTO mfa.deliveries (delivery_id, login_id, "
               "contact_id, channel, kind, status, attempts, last_error) "
               "VALUES (%s, %s, %s, 'email', 'code', 'failed', 1, "
               "'550 5.1.1 <jane.doe@example.com>: unknown; +31612345678')",
               str(uuid.uuid4()), lid, cid)

    for env in (None, OPERATOR):    # as admin and as mfa_operator
        r = ctl("user", "show", cid, env=env, admin=env is None)
        assert r.returncode == 0, r.stderr
        out = r.stdout
        assert "jane.doe@example.com" not in out and "612345678" not in out
        assert "j***@example.com" in out
        assert "+31 6** *** *78" in out
        assert "Jane Doe" in out and "org-7" in out
        assert re.search(r"email\s+offered", out)
        assert "NOT offered: blocked (21610 unsubscribed)" in out
        assert lid in out and "code_sent" in out and "2/5" in out
        assert "550 5.1.1 <j***@example.com>: unknown; +31 6** *** *78" in out

    j = json.loads(ctl("user", "show", cid, "--json", env=OPERATOR,
                       admin=False).stdout)
    assert j["contact_id"] == cid and j["enabled"] is True
    assert j["email"] == "j***@example.com" and j["email_confirmed"] is True
    assert j["phone"] == "+31 6** *** *78" and j["phone_type"] == "mobile"
    assert j["methods"]["email"] == {"offered": True, "why": None}
    assert j["methods"]["sms"] == {"offered": False,
                                   "why": "sms: blocked (21610 unsubscribed)"}
    assert [x["login_id"] for x in j["logins"]] == [lid]
    assert j["logins"][0]["tries"] == 2 and j["logins"][0]["sends"] == 1
    assert j["deliveries"][0]["status"] == "failed"
    assert "jane.doe@" not in json.dumps(j)

    # an unconfirmed email and an invalid phone: nothing to offer, and why
    db.execute("UPDATE mfa.users SET email_confirmed = false, "
               "phone_e164 = NULL, phone_status = 'invalid', "
               "phone_reason = 'too short', phone_type = NULL, "
               "phone_sms_capable = false, phone_sms_blocked = NULL "
               "WHERE contact_id = %s", cid)
    j = json.loads(ctl("user", "show", cid, "--json").stdout)
    assert j["methods"]["email"]["why"] == "email: not confirmed"
    assert j["methods"]["sms"]["why"] == "sms: phone invalid: too short"
    assert j["phone"] is None and j["phone_reason"] == "too short"

    r = ctl("user", "show", "ctl-nobody-%s" % uuid.uuid4().hex[:6])
    assert r.returncode == 1 and "no portal user" in r.stderr
    assert ctl("user", "show").returncode == 2


# ---------------------------------------------------------------- metrics

NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$")


def parse_prometheus(text):
    """A strict reader of the text exposition format 0.0.4: every family
    has HELP and TYPE before its samples and comes in one piece, names and
    labels are valid, values are floats, no sample repeats."""
    fams, seen, current = {}, set(), None
    assert text.endswith("\n")
    for line in text.splitlines():
        assert line.strip() == line and line, repr(line)
        if line.startswith("# HELP "):
            name = line.split(" ", 3)[2]
            assert NAME.match(name) and name not in fams, line
            fams[name] = {"type": None, "samples": {}}
            current = name
        elif line.startswith("# TYPE "):
            _, _, name, typ = line.split(" ")
            assert name == current and fams[name]["type"] is None, line
            assert typ in ("gauge", "counter", "summary", "histogram",
                           "untyped"), line
            fams[name]["type"] = typ
        else:
            assert not line.startswith("#"), line
            m = SAMPLE.match(line)
            assert m, line
            name, labels = m.group(1), {}
            assert name == current and fams[name]["type"], line
            if m.group(3):
                body = m.group(3)
                pairs = LABEL.findall(body)
                assert ",".join('%s="%s"' % p for p in pairs) == body, line
                labels = dict(pairs)
            value = float(m.group(4))
            assert not math.isnan(value), line
            key = (name, tuple(sorted(labels.items())))
            assert key not in seen, line
            seen.add(key)
            fams[name]["samples"][key[1]] = value
    return fams


def metric(fams, name, **labels):
    return fams[name]["samples"].get(tuple(sorted(labels.items())))


def test_metrics_are_valid_prometheus_text(workers, bus, db):
    start_consumer(workers, "mfa.login")
    settle(bus, ["mfa.login"])
    publish_dead(bus, "mfa.login", "test: metrics")
    before = parse_prometheus(ctl("metrics", check=True).stdout)
    cid = "ctl-m-%s" % uuid.uuid4().hex[:8]
    lid = str(uuid.uuid4())
    db.execute("INSERT INTO mfa.users (contact_id, organization_id) "
               "VALUES (%s, 'org')", cid)
    db.execute("INSERT INTO mfa.logins (login_id, contact_id, status, "
               "methods, expires_at, max_attempts, tries, locked_at) VALUES "
               "(%s, %s, 'locked', ARRAY['sms'], now() + interval '5 min', "
               "5, 5, now())", lid, cid)
    db.execute("INSERT INTO mfa.verify_failures (contact_id, login_id) "
               "VALUES (%s, %s)", cid, lid)
    db.execute("INSERT INTO mfa.deliveries (delivery_id, login_id, "
               "contact_id, channel, kind, status, attempts, sent_at) VALUES "
               "(%s, %s, %s, 'sms', 'code', 'sent', 1, now())",
               str(uuid.uuid4()), lid, cid)

    r = ctl("metrics", env=OPERATOR, admin=False)
    assert r.returncode == 0, r.stderr
    fams = parse_prometheus(r.stdout)
    for name, f in fams.items():
        assert name.startswith("mfa_") and f["type"] == "gauge", name
    assert metric(fams, "mfa_up", source="broker") == 1
    assert metric(fams, "mfa_up", source="database") == 1
    for q in ALL_QUEUES:
        kind = "work" if q in WORK else "dead" if q == "mfa.dead" else "retry"
        assert metric(fams, "mfa_queue_exists", queue=q, kind=kind) == 1
    assert metric(fams, "mfa_queue_consumers", queue="mfa.login",
                  kind="work") >= 1
    assert metric(fams, "mfa_dead_letters") == depth(bus, "mfa.dead") == 1
    assert metric(fams, "mfa_queue_messages_ready", queue="mfa.dead",
                  kind="dead") == 1

    def delta(name, **labels):
        return metric(fams, name, **labels) - metric(before, name, **labels)
    assert delta("mfa_deliveries_last_hour", channel="sms",
                 status="sent") == 1
    assert delta("mfa_logins_last_hour", status="locked") == 1
    assert delta("mfa_lockouts_last_hour") == 1
    assert delta("mfa_verifications_last_hour", outcome="wrong_code") == 1
    assert metric(fams, "mfa_delivery_latency_seconds", channel="sms",
                  quantile="0.5") is not None
    assert metric(fams, "mfa_sms_configured") in (0, 1)
    bus.ch.queue_purge("mfa.dead")

    # a broker outage is a gauge, not a missing file
    r = ctl("metrics", env={"MFA_AMQP_URL":
                            "amqp://guest:guest@127.0.0.1:1/%2f"})
    assert r.returncode == 1
    fams = parse_prometheus(r.stdout)
    assert metric(fams, "mfa_up", source="broker") == 0
    assert metric(fams, "mfa_up", source="database") == 1
    assert "mfa_queue_consumers" not in fams
