"""mfa-email against the real SMTP catcher, RabbitMQ and PostgreSQL.

Dispatch jobs are published by the tests themselves (rows inserted as
admin, the code sealed here exactly as mfa-codes seals it), so the email
worker is tested on its own; one test drives the whole flow through
mfa-codes when that worker is built. Every test mails its own random
addresses, so tests never see each other's messages in the shared spool.
The catcher's failure modes are set through control.json
(tests/servers/smtp_catcher.py).
"""
import email
import email.policy
import json
import os
import re
import time
import uuid
from datetime import datetime, timedelta, timezone

import pika
import pytest

from conftest import (delivery, end_delivery_elsewhere, envelope, servers,
                      wait_delivery)
from mfa_crypto import seal_code, sodium

SPOOL = os.environ.get("MFA_TEST_SMTP_SPOOL", "")
CONTROL = os.environ.get("MFA_TEST_SMTP_CONTROL", "")
SMTP_LOG = os.path.join(os.path.dirname(CONTROL), "smtp.log") if CONTROL else ""
EMAIL = "mfa-email"

pytestmark = pytest.mark.skipif(sodium is None, reason="python3-nacl missing")


def seal(code, login_id, delivery_id):
    """The code sealed as mfa-codes seals it (tests/integration/mfa_crypto)."""
    return seal_code(code, login_id, delivery_id)


# ---- the SMTP catcher -----------------------------------------------------

def control(obj):
    tmp = CONTROL + ".tmp.test"
    with open(tmp, "w") as f:
        json.dump(obj, f)
    os.replace(tmp, CONTROL)


@pytest.fixture(autouse=True)
def smtp_ok():
    control({"mode": "ok"})
    yield
    control({"mode": "ok"})


def mails_to(addr):
    """(meta, parsed message, raw bytes) of every stored mail to addr."""
    out = []
    for name in sorted(os.listdir(SPOOL)):
        if not name.endswith(".json") or name.startswith("."):
            continue
        path = os.path.join(SPOOL, name)
        with open(path) as f:
            meta = json.load(f)
        if addr.lower() not in [r.lower() for r in meta["rcpt_tos"]]:
            continue
        eml = path[:-5] + ".eml"
        if not os.path.exists(eml):
            continue  # .json is renamed into place first
        with open(eml, "rb") as f:
            raw = f.read()
        out.append((meta, email.message_from_bytes(raw, policy=email.policy.default),
                    raw))
    return out


def wait_mails(addr, n=1, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = mails_to(addr)
        if len(got) >= n:
            return got
        time.sleep(0.1)
    raise AssertionError("%d mail(s) to %s expected, got %d" % (
        n, addr, len(mails_to(addr))))


def new_addr(tag="u"):
    return "%s-%s@example.com" % (tag, uuid.uuid4().hex[:12])


# ---- rows and jobs --------------------------------------------------------

def make_user(db, addr, locale="en", name="Jane Doe", confirmed=True,
              enabled=True):
    cid = "c-" + uuid.uuid4().hex[:12]
    db.execute("INSERT INTO mfa.users (contact_id, organization_id, "
               "display_name, email, email_status, email_confirmed, locale, "
               "enabled) VALUES (%s, 'org-1', %s, %s, 'valid', %s, %s, %s)",
               cid, name, addr, confirmed, locale, enabled)
    return cid


def make_code(db, contact_id, ttl=300, superseded=False, used=False,
              login_status="code_sent"):
    """A login, its live code and the queued delivery; returns ids."""
    lid, did = str(uuid.uuid4()), str(uuid.uuid4())
    expires = datetime.now(timezone.utc) + timedelta(seconds=ttl)
    db.execute("INSERT INTO mfa.logins (login_id, contact_id, status, "
               "methods, expires_at, max_attempts) VALUES (%s, %s, %s, "
               "ARRAY['email'], now() + interval '15 minutes', 5)",
               lid, contact_id, login_status)
    db.execute("INSERT INTO mfa.deliveries (delivery_id, login_id, "
               "contact_id, kind, channel, status) "
               "VALUES (%s, %s, %s, 'code', 'email', 'queued')",
               did, lid, contact_id)
    db.execute("INSERT INTO mfa.codes (login_id, delivery_id, channel, "
               "code_hash, key_id, expires_at, used_at, superseded_at) "
               "VALUES (%s, %s, 'email', %s, 'test', %s, %s, %s)",
               lid, did, b"\0" * 32, expires,
               datetime.now(timezone.utc) if used else None,
               datetime.now(timezone.utc) if superseded else None)
    return lid, did, expires


def publish_job(bus, etype, data, event_id=None):
    env = envelope(etype, data, event_id)
    props = pika.BasicProperties(content_type="application/json",
                                 delivery_mode=2,
                                 message_id=env["event_id"], type=etype)
    bus.ch.basic_publish("mfa.dispatch", "email", json.dumps(env).encode(),
                         props, mandatory=True)
    return env["event_id"]


def dispatch_code(bus, contact_id, lid, did, expires, code="482913",
                  sealed=None, event_id=None):
    return publish_job(bus, "dispatch.code", {
        "delivery_id": did, "login_id": lid, "contact_id": contact_id,
        "channel": "email",
        "sealed": sealed or seal(code, lid, did),
        "expires_at": expires.isoformat().replace("+00:00", "Z"),
    }, event_id)


def wait_smtp_log(start, text, timeout=10):
    """Waits for text in the SMTP catcher's log after offset start (the
    size it had before the send); says whether it came."""
    deadline, seen = time.time() + timeout, ""
    with open(SMTP_LOG) as f:
        f.seek(start)
        while time.time() < deadline and text not in seen:
            seen += f.read()
            time.sleep(0.05)
    return text in seen


def text_part(msg):
    return msg.get_body(preferencelist=("plain",)).get_content()


def html_part(msg):
    return msg.get_body(preferencelist=("html",)).get_content()


def start_email(workers, **env):
    return workers(EMAIL, **env)


# ---- tests ----------------------------------------------------------------

def test_code_email_is_a_proper_message(workers, bus, db):
    w = start_email(workers)
    addr = new_addr()
    cid = make_user(db, addr, name="Jane Doe")
    lid, did, exp = make_code(db, cid)
    dispatch_code(bus, cid, lid, did, exp, code="482913")

    (meta, msg, raw), = wait_mails(addr)
    row = wait_delivery(db, did, "sent")
    # envelope and headers
    assert meta["mail_from"] == "no-reply@portal.example"
    assert meta["rcpt_tos"] == [addr]
    assert meta["pipelined"]        # the catcher offers PIPELINING
    assert msg["From"] == "Customer Portal <no-reply@portal.example>"
    assert msg["To"] == "Jane Doe <%s>" % addr
    assert msg["Subject"] == "Your Customer Portal verification code"
    assert msg["MIME-Version"] == "1.0"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert re.fullmatch(r"<[^<>@\s]+@portal\.example>", msg["Message-ID"])
    assert abs((msg["Date"].datetime - datetime.now(timezone.utc)).total_seconds()) < 120
    assert msg.get_content_type() == "multipart/alternative"
    # both parts, UTF-8, quoted-printable, the code and the warning
    parts = [p for p in msg.iter_parts()]
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    for p in parts:
        assert p.get_content_charset() == "utf-8"
        assert p["Content-Transfer-Encoding"] == "quoted-printable"
    assert "482913" in text_part(msg) and "482913" in html_part(msg)
    assert "Never share this code" in text_part(msg)
    assert "5 minutes" in text_part(msg)
    # wire format: CRLF only, 7-bit, short lines
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert all(len(line) <= 78 for line in raw.split(b"\r\n"))
    assert max(raw) < 0x80
    # the delivery row and the result event
    assert row["attempts"] == 1 and row["sent_at"] is not None
    assert row["provider_message_id"] == meta["queue_id"]
    res = bus.results(want=1, match=lambda e: e["data"].get("delivery_id") == did)
    assert res and res[0]["type"] == "code.sent"
    assert res[0]["data"]["login_id"] == lid
    assert res[0]["data"]["channel"] == "email"
    assert "482913" not in json.dumps(res[0])
    # never a code or a full address in the logs
    w.wait_log('"sent"')
    assert "482913" not in w.logs()
    assert addr not in w.logs()
    assert addr[0] + "***@example.com" in w.logs()


@pytest.mark.parametrize("locale,subject,line", [
    ("nl-BE", "Uw verificatiecode voor Customer Portal", "Deel deze code nooit met iemand"),
    ("de", "Ihr Bestätigungscode für Customer Portal", "Geben Sie diesen Code niemals weiter"),
    ("fr-FR", "Your Customer Portal verification code", "Never share this code"),
])
def test_user_locale_picks_the_template(workers, bus, db, locale, subject, line):
    start_email(workers)
    addr = new_addr()
    cid = make_user(db, addr, locale=locale, name="Zoë Müller")
    lid, did, exp = make_code(db, cid)
    dispatch_code(bus, cid, lid, did, exp, code="135790")
    (meta, msg, raw), = wait_mails(addr)
    assert msg["Subject"] == subject
    assert msg["To"].addresses[0].display_name == "Zoë Müller"
    assert line in text_part(msg) and line in html_part(msg)
    assert "135790" in text_part(msg)
    assert msg["Content-Language"] == ("en" if locale == "fr-FR" else locale[:2])


def test_temporary_failure_retried_then_sent(workers, bus, db):
    start_email(workers)
    addr = new_addr("tf")
    control({"mode": "tempfail", "count": 1, "at": "rcpt", "rcpt": [addr]})
    cid = make_user(db, addr)
    lid, did, exp = make_code(db, cid)
    dispatch_code(bus, cid, lid, did, exp)
    row = wait_delivery(db, did, "sent")
    assert row["attempts"] == 2
    assert row["last_error"].startswith("451 ")
    assert len(wait_mails(addr)) == 1
    res = bus.results(want=1, match=lambda e: e["data"].get("delivery_id") == did)
    assert res[0]["type"] == "code.sent"


def test_permanent_failure_not_retried(workers, bus, db):
    w = start_email(workers)
    addr = new_addr("pf")
    control({"mode": "permfail", "rcpt": [addr]})
    cid = make_user(db, addr)
    lid, did, exp = make_code(db, cid)
    dispatch_code(bus, cid, lid, did, exp)
    row = wait_delivery(db, did, "failed")
    assert row["attempts"] == 1
    assert row["last_error"].startswith("550 5.1.1")
    assert addr not in row["last_error"]          # the reply is masked
    res = bus.results(want=1, match=lambda e: e["data"].get("delivery_id") == did)
    assert res[0]["type"] == "code.failed"
    assert res[0]["data"]["error"].startswith("550")
    time.sleep(3)                                  # longer than every retry tier
    assert delivery(db, did)["attempts"] == 1
    with open(SMTP_LOG) as f:
        assert sum(1 for l in f if "RCPT TO:<%s>" % addr in l) == 1
    assert mails_to(addr) == []
    assert "retry scheduled" not in w.logs()


@pytest.mark.parametrize("pipelining", [True, False])
def test_refused_recipient_then_next_mail_on_the_session(workers, bus, db,
                                                         pipelining):
    """MAIL, RCPT and DATA in one write when the server offers PIPELINING
    (RFC 2920), one at a time when not: either way a refused recipient
    fails its delivery for good, and the session goes on (RSET) to carry
    the next message."""
    start_email(workers)
    bad, good = new_addr("pf"), new_addr("ok")
    control({"mode": "permfail", "rcpt": [bad], "pipelining": pipelining})
    ids = []
    for addr in (bad, good):
        cid = make_user(db, addr)
        lid, did, exp = make_code(db, cid)
        dispatch_code(bus, cid, lid, did, exp)
        ids.append(did)
        if addr == bad:
            row = wait_delivery(db, did, "failed")
            assert row["last_error"].startswith("550 5.1.1"), row
    (meta, _, _), = wait_mails(good)
    assert meta["pipelined"] is pipelining
    assert wait_delivery(db, ids[1], "sent")["attempts"] == 1
    assert delivery(db, ids[0])["attempts"] == 1
    with open(SMTP_LOG) as f:
        refused = [l for l in f if "RCPT TO:<%s>" % bad in l]
    assert len(refused) == 1
    # one connection carried both: the refused transaction was reset
    assert "%s:%s RCPT" % tuple(meta["peer"][:2]) in refused[0]


def test_server_down_for_a_while_then_delivered_once(workers, bus, db):
    start_email(workers, MFA_RETRY_DELAYS_SECONDS="1,2,3,5,8")
    addr = new_addr("down")
    cid = make_user(db, addr)
    lid, did, exp = make_code(db, cid)
    servers("stop-smtp")
    try:
        dispatch_code(bus, cid, lid, did, exp)
        deadline = time.time() + 20
        while time.time() < deadline and (delivery(db, did)["attempts"] or 0) < 2:
            time.sleep(0.1)
        row = delivery(db, did)
        assert row["status"] == "queued" and row["attempts"] >= 2
        assert row["last_error"]
    finally:
        servers("start-smtp")
    row = wait_delivery(db, did, "sent", timeout=40)
    time.sleep(1)
    assert len(mails_to(addr)) == 1
    assert row["attempts"] >= 3


def test_hanging_server_holds_up_nothing_else(workers, bus, db):
    """One session waits for a reply that does not come; the worker's loop
    goes on: other mail is delivered meanwhile, the stuck send times out
    and is retried."""
    start_email(workers, MFA_SMTP_TIMEOUT_SECONDS="3")
    slow, fast = new_addr("slow"), new_addr("fast")
    control({"mode": "hang", "seconds": 6, "count": 1, "rcpt": [slow]})
    cid_s, cid_f = make_user(db, slow), make_user(db, fast)
    lid_s, did_s, exp_s = make_code(db, cid_s)
    lid_f, did_f, exp_f = make_code(db, cid_f)
    start = os.path.getsize(SMTP_LOG)
    dispatch_code(bus, cid_s, lid_s, did_s, exp_s)
    assert wait_smtp_log(start, "inject hang")  # the slow one is stuck in DATA
    dispatch_code(bus, cid_f, lid_f, did_f, exp_f)
    wait_delivery(db, did_f, "sent")
    row = delivery(db, did_s)
    assert row["status"] == "queued" and row["attempts"] == 0
    row = wait_delivery(db, did_s, "sent", timeout=30)
    assert row["attempts"] == 2
    assert row["last_error"].startswith("timeout")
    assert len(mails_to(slow)) == 1 and len(mails_to(fast)) == 1


def test_sigterm_finishes_the_send_in_flight(workers, bus, db):
    w = start_email(workers)
    addr = new_addr("term")
    control({"mode": "delay_ms", "ms": 1500, "rcpt": [addr]})
    cid = make_user(db, addr)
    lid, did, exp = make_code(db, cid)
    start = os.path.getsize(SMTP_LOG)
    dispatch_code(bus, cid, lid, did, exp)
    wait_smtp_log(start, "inject delay_ms")
    assert w.stop() == 0                   # waited for the reply, then left
    row = delivery(db, did)
    assert row["status"] == "sent" and row["attempts"] == 1
    assert len(mails_to(addr)) == 1
    assert bus.queue_depth("mfa.dispatch.email") == 0


def test_hostile_display_name_cannot_add_headers(workers, bus, db):
    start_email(workers)
    addr = new_addr("evil")
    victim = new_addr("bcc")
    cid = make_user(db, addr, name="Eve\r\nBcc: %s\r\nX-Evil: 1" % victim)
    lid, did, exp = make_code(db, cid)
    dispatch_code(bus, cid, lid, did, exp)
    (meta, msg, raw), = wait_mails(addr)
    assert meta["rcpt_tos"] == [addr]
    assert msg["Bcc"] is None and msg["X-Evil"] is None
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert not re.search(rb"(?im)^(bcc|x-evil):", head)
    assert len(msg.get_all("To")) == 1
    assert msg["To"].addresses[0].addr_spec == addr
    wait_delivery(db, did, "sent")
    assert mails_to(victim) == []


def test_fifty_codes_in_parallel_each_delivered_once(workers, bus, db):
    start_email(workers, MFA_SMTP_CONCURRENCY="8")
    control({"mode": "delay_ms", "ms": 300})
    jobs = []
    for i in range(50):
        addr = new_addr("bulk%02d" % i)
        cid = make_user(db, addr)
        lid, did, exp = make_code(db, cid)
        jobs.append((addr, did))
        dispatch_code(bus, cid, lid, did, exp, code="%06d" % (100000 + i))
    for addr, did in jobs:
        wait_delivery(db, did, "sent", timeout=90)
    control({"mode": "ok"})
    metas = []
    for i, (addr, did) in enumerate(jobs):
        got = mails_to(addr)
        assert len(got) == 1, addr
        assert "%06d" % (100000 + i) in text_part(got[0][1])
        assert delivery(db, did)["attempts"] == 1
        metas.append(got[0][0])
    # In flight together: each DATA reply waited 300 ms, so two mails
    # whose replies came less than 300 ms apart, on two connections,
    # were in the server at the same time.
    metas.sort(key=lambda m: m["received_ts"])
    most = max(sum(1 for m in metas if 0 <= m["received_ts"] - a["received_ts"] < 0.3)
               for a in metas)
    assert most >= 2
    peers = {tuple(m["peer"]) for m in metas}
    assert 2 <= len(peers) <= 8      # several sessions, each reused


def test_stale_codes_are_dropped_not_sent(workers, bus, db):
    start_email(workers)
    cases = {}
    for kind in ("superseded", "used", "expired", "expiring", "closed"):
        addr = new_addr(kind)
        cid = make_user(db, addr)
        lid, did, exp = make_code(
            db, cid, ttl={"expired": -5, "expiring": 30}.get(kind, 300),
            superseded=kind == "superseded", used=kind == "used",
            login_status="locked" if kind == "closed" else "code_sent")
        dispatch_code(bus, cid, lid, did, exp)
        cases[kind] = (addr, did)
    # no confirmed address any more
    addr = new_addr("unconfirmed")
    cid = make_user(db, addr, confirmed=False)
    lid, did, exp = make_code(db, cid)
    dispatch_code(bus, cid, lid, did, exp)
    cases["unconfirmed"] = (addr, did)
    for kind, (addr, did) in cases.items():
        row = wait_delivery(db, did, "dropped")
        assert row["attempts"] == 0
        assert row["last_error"], kind
    assert cases and "superseded" in delivery(db, cases["superseded"][1])["last_error"]
    assert "expired" in delivery(db, cases["expired"][1])["last_error"]
    assert "expiring" in delivery(db, cases["expiring"][1])["last_error"]
    assert "confirmed" in delivery(db, cases["unconfirmed"][1])["last_error"]
    time.sleep(1)
    for addr, did in cases.values():
        assert mails_to(addr) == []


def test_final_delivery_is_not_sent_again(workers, bus, db):
    w = start_email(workers)
    addr = new_addr("again")
    cid = make_user(db, addr)
    lid, did, exp = make_code(db, cid)
    dispatch_code(bus, cid, lid, did, exp)
    wait_delivery(db, did, "sent")
    # a replayed job (new event id, same delivery) sends nothing
    dispatch_code(bus, cid, lid, did, exp)
    w.wait_log("delivery already final")
    time.sleep(0.5)
    assert len(mails_to(addr)) == 1
    assert delivery(db, did)["attempts"] == 1


def test_delivery_final_meanwhile_gets_nothing_more(workers, bus, db):
    """The delivery ends elsewhere while its message is with the SMTP
    server: the completion's write finds it no longer queued and records
    nothing (no 'sent', no attempt, no audit row, no result)."""
    w = start_email(workers)
    addr = new_addr("meanwhile")
    control({"mode": "delay_ms", "ms": 1500, "rcpt": [addr]})
    cid = make_user(db, addr)
    lid, did, exp = make_code(db, cid)
    start = os.path.getsize(SMTP_LOG)
    dispatch_code(bus, cid, lid, did, exp)
    assert wait_smtp_log(start, "inject delay_ms")
    end_delivery_elsewhere(db, did)
    w.wait_log("delivery final meanwhile; outcome not recorded")
    row = delivery(db, did)
    assert row["status"] == "dropped" and row["attempts"] == 0
    assert row["last_error"] == "test: ended elsewhere"
    assert row["provider_message_id"] is None
    assert db.rows("SELECT action FROM mfa.audit WHERE login_id = %s "
                   "AND action LIKE 'email.%%'", lid) == []
    assert bus.queue_depth("mfa.dispatch.email") == 0


def test_tampered_seal_dead_lettered_and_failed(workers, bus, db):
    start_email(workers)
    addr = new_addr("seal")
    cid = make_user(db, addr)
    lid, did, exp = make_code(db, cid)
    other = str(uuid.uuid4())
    # sealed for another delivery: the associated data does not match
    eid = dispatch_code(bus, cid, lid, did, exp, sealed=seal("123456", lid, other))
    dead = bus.dead(lambda m: m["props"].message_id == eid, timeout=20)
    assert dead and "sealed code" in dead[0]["headers"]["x-mfa-error"]
    row = wait_delivery(db, did, "failed")
    assert row["attempts"] == 0
    assert mails_to(addr) == []


def test_contact_changed_notice(workers, bus, db):
    start_email(workers)
    old = new_addr("old")
    did = str(uuid.uuid4())
    cid = make_user(db, new_addr("new"), locale="de")
    db.execute("INSERT INTO mfa.deliveries (delivery_id, login_id, contact_id, "
               "kind, channel, status) VALUES (%s, NULL, %s, 'notice', "
               "'email', 'queued')", did, cid)
    publish_job(bus, "dispatch.notice", {
        "delivery_id": did, "contact_id": cid, "template": "contact_changed",
        "to": old, "locale": "de-AT", "display_name": "Jürgen <Admin>"})
    (meta, msg, raw), = wait_mails(old)
    assert msg["Subject"] == "Ihre Kontaktdaten bei Customer Portal wurden geändert"
    assert "Jürgen <Admin>" in text_part(msg)
    assert "Jürgen &lt;Admin&gt;" in html_part(msg)
    assert "<Admin>" not in html_part(msg)
    row = wait_delivery(db, did, "sent")
    assert row["attempts"] == 1
    res = bus.results(want=1, match=lambda e: e["data"].get("delivery_id") == did)
    assert res[0]["type"] == "notice.sent"
    assert res[0]["data"]["contact_id"] == cid


def test_end_to_end_through_mfa_codes(workers, bus, db):
    from conftest import bin_path
    try:
        bin_path("mfa-codes")
    except FileNotFoundError:
        pytest.skip("mfa-codes is not built yet")
    workers("mfa-codes")
    start_email(workers)
    addr = new_addr("e2e")
    cid = make_user(db, addr, locale="nl", name="Jan Jansen")
    lid = str(uuid.uuid4())
    r = bus.call("login.started", {"login_id": lid, "contact_id": cid})
    assert r["status"] == "pending" and "email" in r["methods"]
    r = bus.call("login.code_requested", {"login_id": lid, "method": "email"})
    assert r["status"] == "sent"
    (meta, msg, raw), = wait_mails(addr)
    assert msg["Subject"] == "Uw verificatiecode voor Customer Portal"
    code = re.search(r"^\s+(\d{6,10})\s*$", text_part(msg), re.M).group(1)
    r = bus.call("login.code_submitted", {"login_id": lid, "code": code})
    assert r["status"] == "verified"
