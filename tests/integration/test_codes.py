"""mfa-codes against real RabbitMQ and PostgreSQL.

Users are inserted straight into mfa.users as the admin (contact-sync is
tested on its own); login events go in through mfa.events like the portal
sends them and the replies come back over direct reply-to. The clear code
is read the way mfa-email / mfa-sms read it: from the dispatch.code job in
mfa.dispatch.<channel>, opened with the seal key (mfa_crypto.py). The SMS
settings row is system-wide, so every test here starts without it and the
row found before the module is put back afterwards.
"""
import json
import random
import re
import time
import uuid
from datetime import datetime, timezone

import pika
import pytest

from conftest import Db, envelope
from mfa_crypto import dest_hash, open_code, sodium

CODES = "mfa-codes"

pytestmark = pytest.mark.skipif(sodium is None, reason="python3-nacl missing")


# ---- users, settings ------------------------------------------------------

def new_cid():
    return "cd-" + uuid.uuid4().hex[:12]


def new_mobile():
    """A valid Dutch mobile number of its own, so the per-number SMS
    counts of one test never see another's."""
    return "+3161%07d" % random.randrange(10 ** 7)


def make_user(db, email="jane.doe@example.com", confirmed=True, phone=None,
              capable=True, blocked=None, enabled=True, phone_invalid=None,
              email_invalid=None):
    cid = new_cid()
    if email_invalid:
        email_row = (None, "invalid", email_invalid, False)
    elif email is None:
        email_row = (None, "missing", None, False)
    else:
        email_row = (email, "valid", None, confirmed)
    if phone_invalid:
        phone_row = (None, "invalid", phone_invalid, False, None)
    elif phone is None:
        phone_row = (None, "missing", None, False, None)
    else:
        phone_row = (phone, "valid", None, capable,
                     "mobile" if capable else "fixed_line")
    db.execute("INSERT INTO mfa.users (contact_id, organization_id, "
               "display_name, locale, email, email_status, email_reason, "
               "email_confirmed, phone_e164, phone_status, phone_reason, "
               "phone_sms_capable, phone_type, phone_sms_blocked, enabled) "
               "VALUES (%s, 'org-1', 'Jane Doe', 'en', %s, %s, %s, %s, "
               "%s, %s, %s, %s, %s, %s, %s)",
               cid, *email_row, *phone_row, blocked, enabled)
    return cid


SMS_COMPLETE = {"client_id": "SK0123456789abcdef0123456789abcdef",
                "account_sid": "AC0123456789abcdef0123456789abcdef",
                "from": "+15005550006"}


def set_sms_settings(db, value=None, secret="c2VhbGVk"):
    db.execute("INSERT INTO mfa.settings (name, value, secret_sealed, "
               "updated_by) VALUES ('sms', %s::jsonb, %s, 'test') "
               "ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value, "
               "secret_sealed = EXCLUDED.secret_sealed, updated_at = now()",
               json.dumps(SMS_COMPLETE if value is None else value), secret)


def clear_sms_settings(db):
    db.execute("DELETE FROM mfa.settings WHERE name = 'sms'")


@pytest.fixture(scope="module", autouse=True)
def keep_sms_settings():
    db = Db()
    saved = db.one("SELECT value::text AS value, secret_sealed, updated_by "
                   "FROM mfa.settings WHERE name = 'sms'")
    yield
    clear_sms_settings(db)
    if saved:
        db.execute("INSERT INTO mfa.settings (name, value, secret_sealed, "
                   "updated_by) VALUES ('sms', %s::jsonb, %s, %s)",
                   saved["value"], saved["secret_sealed"],
                   saved["updated_by"])


@pytest.fixture(autouse=True)
def no_sms_settings(db):
    clear_sms_settings(db)
    yield


# ---- events ---------------------------------------------------------------

def start_login(bus, cid, login_id=None):
    lid = login_id or str(uuid.uuid4())
    r = bus.call("login.started", {"login_id": lid, "contact_id": cid,
                                   "ip": "192.0.2.7",
                                   "user_agent": "pytest"})
    return lid, r


def request(bus, lid, method="email", **kw):
    return bus.call("login.code_requested",
                    {"login_id": lid, "method": method}, **kw)


def submit(bus, lid, code, **kw):
    return bus.call("login.code_submitted", {"login_id": lid, "code": code},
                    **kw)


def take_jobs(bus, login_id, channel="email", want=1, timeout=10):
    """dispatch.code jobs of one login from mfa.dispatch.<channel> (acked);
    others are put back."""
    queue = "mfa.dispatch." + channel
    out = []
    deadline = time.time() + timeout
    while time.time() < deadline and len(out) < want:
        others = []
        while True:
            m, p, body = bus.ch.basic_get(queue, auto_ack=False)
            if m is None:
                break
            job = json.loads(body)
            if job.get("data", {}).get("login_id") == login_id:
                bus.ch.basic_ack(m.delivery_tag)
                out.append({"job": job, "props": p, "body": body})
            else:
                others.append(m.delivery_tag)
        for t in others:
            bus.ch.basic_nack(t, requeue=True)
        if len(out) < want:
            bus.conn.process_data_events(time_limit=0.1)
    return out


def code_of(job):
    d = job["job"]["data"]
    return open_code(d["sealed"], d["login_id"], d["delivery_id"])


def send_code(bus, lid, channel="email"):
    """Requests a code and reads it out of its dispatch job."""
    r = request(bus, lid, channel)
    assert r["status"] == "sent", r
    jobs = take_jobs(bus, lid, channel)
    assert len(jobs) == 1
    return code_of(jobs[0]), jobs[0], r


def other_code(code):
    return str((int(code) + 1) % 10 ** len(code)).zfill(len(code))


def login_row(db, lid):
    return db.one("SELECT * FROM mfa.login_status WHERE login_id = %s", lid)


def results(bus, etype, lid, want=1, timeout=5):
    return bus.results(timeout=timeout, want=want,
                       match=lambda e: e["type"] == etype and
                       e["data"].get("login_id") == lid)


def assert_no_code_in_logs(w, *codes):
    text = w.logs()
    for c in codes:
        assert not re.search(r"(?<!\d)%s(?!\d)" % c, text), \
            "code %s found in the worker's log" % c


def audit_actions(db, lid):
    return [r["action"] for r in db.rows(
        "SELECT action FROM mfa.audit WHERE login_id = %s ORDER BY id", lid)]


# ---- login.started --------------------------------------------------------

def test_two_methods_with_masked_hints(workers, bus, db):
    workers(CODES)
    set_sms_settings(db)
    phone = "+31612345678"
    cid = make_user(db, email="jane.doe@example.com", phone=phone)
    lid, r = start_login(bus, cid)
    assert r == {"login_id": lid, "status": "pending",
                 "methods": ["email", "sms"],
                 "email_hint": "j***@example.com",
                 "phone_hint": "+31 6** *** *78"}
    row = login_row(db, lid)
    assert row["status"] == "pending"
    assert row["methods"] == ["email", "sms"]
    assert row["attempts_left"] == 5
    left = (row["expires_at"] - datetime.now(timezone.utc)).total_seconds()
    assert 880 < left <= 900                          # login.ttl_seconds
    raw = db.one("SELECT * FROM mfa.logins WHERE login_id = %s", lid)
    assert raw["ip"] == "192.0.2.7" and raw["user_agent"] == "pytest"
    assert raw["max_attempts"] == 5
    a = db.one("SELECT * FROM mfa.audit WHERE login_id = %s", lid)
    assert a["actor"] == "mfa-codes" and a["action"] == "login.started"
    assert a["contact_id"] == cid
    assert "jane.doe@" not in json.dumps(a["detail"])
    assert phone not in json.dumps(a["detail"])


def test_sms_follows_settings_without_restart(workers, bus, db):
    workers(CODES)
    cid = make_user(db, phone=new_mobile())
    # no settings row at all
    _, r = start_login(bus, cid)
    assert r["status"] == "pending" and r["methods"] == ["email"]
    assert r["phone_hint"] is None
    # incomplete rows: no secret, a blank field, a missing field
    set_sms_settings(db, secret=None)
    assert start_login(bus, cid)[1]["methods"] == ["email"]
    set_sms_settings(db, dict(SMS_COMPLETE, client_id="  "))
    assert start_login(bus, cid)[1]["methods"] == ["email"]
    v = dict(SMS_COMPLETE)
    del v["from"]
    set_sms_settings(db, v)
    assert start_login(bus, cid)[1]["methods"] == ["email"]
    # complete: the same running worker offers SMS now
    set_sms_settings(db)
    _, r = start_login(bus, cid)
    assert r["methods"] == ["email", "sms"]
    assert r["phone_hint"].startswith("+31 6")
    clear_sms_settings(db)
    assert start_login(bus, cid)[1]["methods"] == ["email"]


def test_sms_only_for_valid_capable_unblocked_phone(workers, bus, db):
    workers(CODES)
    set_sms_settings(db)
    cases = [
        (make_user(db, confirmed=False, phone=new_mobile()), ["sms"]),
        (make_user(db, phone=new_mobile(), capable=False), ["email"]),
        (make_user(db, phone=new_mobile(), blocked="21610 unsubscribed"),
         ["email"]),
        (make_user(db, phone_invalid="too short"), ["email"]),
        (make_user(db, phone=None), ["email"]),
    ]
    for cid, want in cases:
        lid, r = start_login(bus, cid)
        assert r["status"] == "pending" and r["methods"] == want, (cid, r)
        if "email" not in want:
            assert r["email_hint"] is None
        if "sms" not in want:
            assert r["phone_hint"] is None


def test_sms_region_allow_list(workers, bus, db):
    workers(CODES, MFA_PHONE_SMS_ALLOWED_REGIONS="BE,DE")
    set_sms_settings(db)
    nl = make_user(db, phone=new_mobile())
    be = make_user(db, phone="+32470%06d" % random.randrange(10 ** 6))
    assert start_login(bus, nl)[1]["methods"] == ["email"]
    assert start_login(bus, be)[1]["methods"] == ["email", "sms"]
    a = db.one("SELECT detail FROM mfa.audit WHERE contact_id = %s "
               "AND action = 'login.started'", nl)
    assert a["detail"]["unavailable"]["sms"] == "sms: region NL not allowed"


def test_no_method_recorded_as_cancelled(workers, bus, db):
    workers(CODES)
    cid = make_user(db, confirmed=False, phone=new_mobile())  # no settings
    lid, r = start_login(bus, cid)
    assert r == {"login_id": lid, "status": "no_method", "methods": [],
                 "email_hint": None, "phone_hint": None}
    row = login_row(db, lid)
    assert row["status"] == "cancelled" and row["methods"] == []
    a = db.one("SELECT detail FROM mfa.audit WHERE login_id = %s "
               "AND action = 'login.no_method'", lid)
    assert a["detail"]["unavailable"] == {
        "email": "email: not confirmed", "sms": "sms: settings incomplete"}
    r = request(bus, lid, "email")
    assert r == {"login_id": lid, "status": "method_unavailable"}
    assert take_jobs(bus, lid, timeout=0.5) == []


def test_unknown_user_and_disabled(workers, bus, db):
    workers(CODES)
    lid, r = start_login(bus, "cd-nobody-" + uuid.uuid4().hex[:6])
    assert r == {"login_id": lid, "status": "unknown_user", "methods": [],
                 "email_hint": None, "phone_hint": None}
    assert login_row(db, lid) is None
    cid = make_user(db, enabled=False)
    lid2, r = start_login(bus, cid)
    assert r["status"] == "disabled" and r["methods"] == []
    assert r["email_hint"] is None
    assert login_row(db, lid2) is None
    assert audit_actions(db, lid) == ["login.unknown_user"]
    assert audit_actions(db, lid2) == ["login.disabled"]
    # no login: nothing to send or verify
    assert request(bus, lid2)["status"] == "unknown_login"
    assert submit(bus, lid2, "123456") == {"login_id": lid2,
                                           "status": "unknown_login"}


def test_login_id_reuse_is_invalid(workers, bus, db):
    workers(CODES)
    cid = make_user(db)
    lid, r = start_login(bus, cid)
    assert r["status"] == "pending"
    eid = bus.publish("login.started", {"login_id": lid,
                                        "contact_id": make_user(db)})
    assert bus.wait_reply(eid)["status"] == "invalid"
    assert login_row(db, lid)["contact_id"] == cid
    dead = bus.dead(lambda m: m["props"].message_id == eid)
    assert dead[0]["headers"]["x-mfa-error"] == \
        "data.login_id: a login with this id already exists"


def test_other_event_types_rejected(workers, bus, db):
    workers(CODES)
    env = envelope("contact.demoted", {"contact_id": "cd-x"})
    props = pika.BasicProperties(content_type="application/json",
                                 delivery_mode=2,
                                 message_id=env["event_id"],
                                 type="contact.demoted",
                                 reply_to="amq.rabbitmq.reply-to")
    bus.ch.basic_publish("", "mfa.login", json.dumps(env).encode(), props)
    r = bus.wait_reply(env["event_id"])
    assert r["status"] == "invalid"
    dead = bus.dead(lambda m: m["props"].message_id == env["event_id"])
    assert dead[0]["headers"]["x-mfa-error"] == \
        "mfa-codes does not handle contact.demoted events"
    assert dead[0]["headers"]["x-mfa-origin"] == "mfa.login"


# ---- login.code_requested -------------------------------------------------

def test_code_sent_sealed_job_delivery_and_verified(workers, bus, db):
    w = workers(CODES)
    cid = make_user(db, email="ann.smith@example.com")
    lid, _ = start_login(bus, cid)
    t0 = datetime.now(timezone.utc)
    r = request(bus, lid, "email")
    assert set(r) == {"login_id", "status", "expires_at"}
    assert r["status"] == "sent"
    exp = datetime.strptime(r["expires_at"], "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=timezone.utc)
    assert 290 <= (exp - t0).total_seconds() <= 301   # codes.ttl_seconds

    jobs = take_jobs(bus, lid)
    assert len(jobs) == 1
    job, props = jobs[0]["job"], jobs[0]["props"]
    assert job["type"] == "dispatch.code" and props.type == "dispatch.code"
    d = job["data"]
    assert set(d) == {"delivery_id", "login_id", "contact_id", "channel",
                      "sealed", "expires_at"}
    assert d["channel"] == "email" and d["contact_id"] == cid
    assert d["expires_at"] == r["expires_at"]
    code = code_of(jobs[0])
    assert re.fullmatch(r"\d{6}", code)
    assert code not in jobs[0]["body"].decode()
    # the seal is bound to this login and delivery
    with pytest.raises(Exception):
        open_code(d["sealed"], d["login_id"], str(uuid.uuid4()))

    dl = db.one("SELECT * FROM mfa.delivery_status WHERE delivery_id = %s",
                d["delivery_id"])
    assert dl["status"] == "queued" and dl["channel"] == "email"
    assert dl["login_id"] == lid
    assert db.scalar("SELECT kind FROM mfa.deliveries WHERE delivery_id = "
                     "%s", d["delivery_id"]) == "code"
    c = db.one("SELECT * FROM mfa.codes WHERE login_id = %s", lid)
    assert str(c["delivery_id"]) == d["delivery_id"]
    assert len(bytes(c["code_hash"])) == 32
    assert code.encode() not in bytes(c["code_hash"])
    assert re.fullmatch(r"[0-9a-f]{8}", c["key_id"])
    assert c["used_at"] is None and c["superseded_at"] is None
    assert login_row(db, lid)["status"] == "code_sent"
    req = db.one("SELECT * FROM mfa.code_requests WHERE login_id = %s", lid)
    assert req["outcome"] == "sent" and req["channel"] == "email"
    assert bytes(req["dest_hash"]) == dest_hash("ann.smith@example.com")

    r = submit(bus, lid, code)
    assert r == {"login_id": lid, "status": "verified"}
    row = login_row(db, lid)
    assert row["status"] == "verified" and row["verified_at"] is not None
    assert db.scalar("SELECT used_at IS NOT NULL FROM mfa.codes "
                     "WHERE login_id = %s", lid)
    res = results(bus, "login.verified", lid)
    assert res and res[0]["data"] == {"login_id": lid, "contact_id": cid,
                                      "channel": "email"}
    assert code not in json.dumps(res[0])
    # verified once: the same code again does not verify a second time
    r = submit(bus, lid, code)
    assert r == {"login_id": lid, "status": "expired"}
    assert audit_actions(db, lid) == ["login.started", "code.sent",
                                      "code.verified", "code.refused"]
    details = json.dumps([x["detail"] for x in db.rows(
        "SELECT detail FROM mfa.audit WHERE login_id = %s", lid)])
    assert code not in details and "ann.smith" not in details
    assert_no_code_in_logs(w, code)
    assert "a***@example.com" in w.logs()
    assert "ann.smith@example.com" not in w.logs()


def test_sms_code_dispatched_to_sms_queue(workers, bus, db):
    w = workers(CODES)
    set_sms_settings(db)
    phone = new_mobile()
    cid = make_user(db, phone=phone)
    lid, _ = start_login(bus, cid)
    code, job, r = send_code(bus, lid, "sms")
    assert job["job"]["data"]["channel"] == "sms"
    assert db.scalar("SELECT channel FROM mfa.deliveries WHERE login_id = "
                     "%s", lid) == "sms"
    req = db.one("SELECT * FROM mfa.code_requests WHERE login_id = %s", lid)
    assert bytes(req["dest_hash"]) == dest_hash(phone)
    assert req["region"] == "NL"
    assert phone not in w.logs()
    assert submit(bus, lid, code)["status"] == "verified"
    assert_no_code_in_logs(w, code)


def test_method_unavailable(workers, bus, db):
    workers(CODES)
    cid = make_user(db, phone=new_mobile())   # no SMS settings: email only
    lid, r = start_login(bus, cid)
    assert r["methods"] == ["email"]
    assert request(bus, lid, "sms") == {"login_id": lid,
                                        "status": "method_unavailable"}
    # offered at the start, gone since: the email is no longer confirmed
    db.execute("UPDATE mfa.users SET email_confirmed = false "
               "WHERE contact_id = %s", cid)
    assert request(bus, lid, "email")["status"] == "method_unavailable"
    assert take_jobs(bus, lid, timeout=0.5) == []
    assert db.scalar("SELECT count(*) FROM mfa.codes WHERE login_id = %s",
                     lid) == 0
    outcomes = [x["outcome"] for x in db.rows(
        "SELECT outcome FROM mfa.code_requests WHERE login_id = %s "
        "ORDER BY id", lid)]
    assert outcomes == ["method_unavailable", "method_unavailable"]


def test_resend_cooldown(workers, bus, db):
    workers(CODES, MFA_CODES_RESEND_COOLDOWN_SECONDS=20)
    cid = make_user(db)
    lid, _ = start_login(bus, cid)
    assert request(bus, lid)["status"] == "sent"
    r = request(bus, lid)
    assert r["status"] == "rate_limited"
    assert 1 <= r["retry_after_s"] <= 20
    assert set(r) == {"login_id", "status", "retry_after_s"}
    # refused requests are recorded but do not count: one code, one job
    assert db.scalar("SELECT count(*) FROM mfa.codes WHERE login_id = %s",
                     lid) == 1
    assert len(take_jobs(bus, lid, want=2, timeout=1)) == 1
    # once the cooldown has passed (moved into the past), it sends again
    db.execute("UPDATE mfa.logins SET last_code_at = now() - "
               "interval '21 seconds' WHERE login_id = %s", lid)
    assert request(bus, lid)["status"] == "sent"


def test_max_sends_per_login(workers, bus, db):
    workers(CODES, MFA_CODES_RESEND_COOLDOWN_SECONDS=0,
            MFA_CODES_MAX_SENDS_PER_LOGIN=3)
    lid, _ = start_login(bus, make_user(db))
    for _ in range(3):
        assert request(bus, lid)["status"] == "sent"
    r = request(bus, lid)
    assert r == {"login_id": lid, "status": "rate_limited"}  # no retry
    assert db.scalar("SELECT sends FROM mfa.logins WHERE login_id = %s",
                     lid) == 3
    # a new login of the same user may send again
    lid2, _ = start_login(bus, db.scalar(
        "SELECT contact_id FROM mfa.logins WHERE login_id = %s", lid))
    assert request(bus, lid2)["status"] == "sent"


def test_max_sends_per_user_per_hour(workers, bus, db):
    workers(CODES, MFA_CODES_RESEND_COOLDOWN_SECONDS=0,
            MFA_CODES_MAX_SENDS_PER_USER_PER_HOUR=3)
    cid = make_user(db)
    a, _ = start_login(bus, cid)
    b, _ = start_login(bus, cid)
    assert request(bus, a)["status"] == "sent"
    assert request(bus, a)["status"] == "sent"
    assert request(bus, b)["status"] == "sent"
    r = request(bus, b)
    assert r["status"] == "rate_limited"
    assert 3590 <= r["retry_after_s"] <= 3600
    # another user is not affected
    c, _ = start_login(bus, make_user(db))
    assert request(bus, c)["status"] == "sent"
    # the oldest send leaves the window: one more is allowed
    db.execute("UPDATE mfa.code_requests SET created_at = now() - "
               "interval '61 minutes' WHERE id = (SELECT min(id) FROM "
               "mfa.code_requests WHERE contact_id = %s)", cid)
    assert request(bus, b)["status"] == "sent"


def test_sms_per_number_per_day(workers, bus, db):
    workers(CODES, MFA_CODES_RESEND_COOLDOWN_SECONDS=0,
            MFA_PHONE_MAX_SMS_PER_NUMBER_PER_DAY=2)
    set_sms_settings(db)
    phone = new_mobile()
    # two users share one number: the limit is the number's
    u1 = make_user(db, phone=phone)
    u2 = make_user(db, phone=phone)
    l1, _ = start_login(bus, u1)
    l2, _ = start_login(bus, u2)
    assert request(bus, l1, "sms")["status"] == "sent"
    assert request(bus, l2, "sms")["status"] == "sent"
    r = request(bus, l2, "sms")
    assert r["status"] == "rate_limited"
    assert 86000 < r["retry_after_s"] <= 86400
    # email is not limited by the number
    assert request(bus, l2, "email")["status"] == "sent"
    # the number is never stored, only its keyed hash
    assert db.scalar("SELECT count(*) FROM mfa.code_requests WHERE "
                     "dest_hash = %s AND outcome = 'sent'",
                     dest_hash(phone)) == 2
    assert db.scalar("SELECT count(*) FROM mfa.code_requests r WHERE "
                     "to_jsonb(r)::text LIKE %s OR "
                     "encode(dest_hash, 'escape') LIKE %s",
                     "%" + phone[1:] + "%", "%" + phone[1:] + "%") == 0


# ---- login.code_submitted -------------------------------------------------

def test_lockout_after_max_attempts(workers, bus, db):
    w = workers(CODES)
    cid = make_user(db)
    lid, _ = start_login(bus, cid)
    code, _, _ = send_code(bus, lid)
    bad = other_code(code)
    for left in (4, 3, 2, 1):
        assert submit(bus, lid, bad) == {"login_id": lid, "status": "invalid",
                                         "attempts_left": left}
    assert submit(bus, lid, bad) == {"login_id": lid, "status": "locked",
                                     "attempts_left": 0}
    # locked stays locked, even for the right code
    assert submit(bus, lid, code) == {"login_id": lid, "status": "locked",
                                      "attempts_left": 0}
    row = login_row(db, lid)
    assert row["status"] == "locked" and row["attempts_left"] == 0
    assert row["verified_at"] is None
    assert db.scalar("SELECT count(*) FROM mfa.verify_failures WHERE "
                     "login_id = %s", lid) == 5
    res = results(bus, "login.locked", lid)
    assert res[0]["data"] == {"login_id": lid, "contact_id": cid,
                              "reason": "max_attempts"}
    assert request(bus, lid)["status"] == "locked"
    acts = audit_actions(db, lid)
    assert acts.count("code.invalid") == 5 and "login.locked" in acts
    assert_no_code_in_logs(w, code, bad)


def test_malformed_code_is_a_counted_wrong_try(workers, bus, db):
    workers(CODES)
    lid, _ = start_login(bus, make_user(db))
    code, _, _ = send_code(bus, lid)
    for typed, left in (("12345", 4), ("1234567", 3), ("abcdef", 2),
                        (" " + code, 1)):
        assert submit(bus, lid, typed) == {"login_id": lid,
                                           "status": "invalid",
                                           "attempts_left": left}
    assert submit(bus, lid, code)["status"] == "verified"
    assert db.scalar("SELECT tries FROM mfa.logins WHERE login_id = %s",
                     lid) == 5


def test_superseded_code_refused(workers, bus, db):
    workers(CODES, MFA_CODES_RESEND_COOLDOWN_SECONDS=0)
    lid, _ = start_login(bus, make_user(db))
    first, j1, _ = send_code(bus, lid)
    second, j2, _ = send_code(bus, lid)
    assert db.scalar("SELECT superseded_at IS NOT NULL FROM mfa.codes "
                     "WHERE delivery_id = %s",
                     j1["job"]["data"]["delivery_id"])
    if first != second:   # one in a million they are the same digits
        assert submit(bus, lid, first) == {"login_id": lid,
                                           "status": "invalid",
                                           "attempts_left": 4}
    assert submit(bus, lid, second)["status"] == "verified"


def test_expired_code_and_expired_login_refused(workers, bus, db):
    workers(CODES)
    lid, _ = start_login(bus, make_user(db))
    code, _, _ = send_code(bus, lid)
    db.execute("UPDATE mfa.codes SET expires_at = now() - interval '1 "
               "second' WHERE login_id = %s", lid)
    assert submit(bus, lid, code) == {"login_id": lid, "status": "expired"}
    assert db.scalar("SELECT used_at FROM mfa.codes WHERE login_id = %s",
                     lid) is None
    assert db.scalar("SELECT count(*) FROM mfa.verify_failures WHERE "
                     "login_id = %s", lid) == 0

    lid2, _ = start_login(bus, make_user(db))
    code2, _, _ = send_code(bus, lid2)
    db.execute("UPDATE mfa.logins SET expires_at = now() - interval '1 "
               "second' WHERE login_id = %s", lid2)
    assert submit(bus, lid2, code2) == {"login_id": lid2,
                                        "status": "expired"}
    assert request(bus, lid2) == {"login_id": lid2, "status": "expired"}
    assert login_row(db, lid2)["status"] == "expired"
    assert db.scalar("SELECT tries FROM mfa.logins WHERE login_id = %s",
                     lid2) == 0


def test_duplicate_events_same_reply_one_effect(workers, bus, db):
    workers(CODES)
    lid, _ = start_login(bus, make_user(db))
    eid = str(uuid.uuid4())
    r1 = request(bus, lid, event_id=eid)
    r2 = request(bus, lid, event_id=eid)
    assert r1 == r2 and r1["status"] == "sent"
    assert db.scalar("SELECT count(*) FROM mfa.codes WHERE login_id = %s",
                     lid) == 1
    assert db.scalar("SELECT count(*) FROM mfa.deliveries WHERE login_id = "
                     "%s", lid) == 1
    assert db.scalar("SELECT sends FROM mfa.logins WHERE login_id = %s",
                     lid) == 1
    # the stored job is published again with its event_id: the dispatch
    # worker's inbox makes it one delivery
    jobs = take_jobs(bus, lid, want=2)
    assert len(jobs) == 2
    assert jobs[0]["job"]["event_id"] == jobs[1]["job"]["event_id"]
    code = code_of(jobs[0])

    sid = str(uuid.uuid4())
    assert submit(bus, lid, other_code(code), event_id=sid)["status"] == \
        "invalid"
    assert submit(bus, lid, other_code(code), event_id=sid) == {
        "login_id": lid, "status": "invalid", "attempts_left": 4}
    assert db.scalar("SELECT tries FROM mfa.logins WHERE login_id = %s",
                     lid) == 1
    vid = str(uuid.uuid4())
    assert submit(bus, lid, code, event_id=vid)["status"] == "verified"
    assert submit(bus, lid, code, event_id=vid)["status"] == "verified"
    assert db.scalar("SELECT tries FROM mfa.logins WHERE login_id = %s",
                     lid) == 2


def test_two_workers_racing_count_exactly_max_attempts(workers, bus, db):
    w1 = workers(CODES, MFA_AMQP_PREFETCH=5)
    w2 = workers(CODES, MFA_AMQP_PREFETCH=5)
    cid = make_user(db)
    lid, _ = start_login(bus, cid)
    code, _, _ = send_code(bus, lid)
    bad = other_code(code)
    eids = [bus.publish("login.code_submitted",
                        {"login_id": lid, "code": bad}) for _ in range(50)]
    replies = [bus.wait_reply(e, timeout=60) for e in eids]
    statuses = [r["status"] for r in replies]
    assert statuses.count("invalid") == 4, statuses
    assert statuses.count("locked") == 46, statuses
    assert db.scalar("SELECT tries FROM mfa.logins WHERE login_id = %s",
                     lid) == 5
    assert db.scalar("SELECT count(*) FROM mfa.verify_failures WHERE "
                     "login_id = %s", lid) == 5
    assert login_row(db, lid)["status"] == "locked"
    # both processes took part
    for w in (w1, w2):
        assert "code not verified" in w.logs() or "wrong code" in w.logs() \
            or "login locked" in w.logs(), w.logs()[-2000:]
    assert submit(bus, lid, code)["status"] == "locked"
    assert len(results(bus, "login.locked", lid, want=2, timeout=2)) == 1


def test_per_user_failure_budget_across_logins(workers, bus, db):
    workers(CODES, MFA_CODES_MAX_FAILURES_PER_USER_PER_HOUR=3)
    cid = make_user(db)
    a, _ = start_login(bus, cid)
    b, _ = start_login(bus, cid)
    ca, _, _ = send_code(bus, a)
    cb, _, _ = send_code(bus, b)
    # each answer shows the smaller of the login's and the user's budget
    assert submit(bus, a, other_code(ca))["attempts_left"] == 2
    assert submit(bus, a, other_code(ca))["attempts_left"] == 1
    r = submit(bus, b, other_code(cb))
    assert r == {"login_id": b, "status": "locked", "attempts_left": 0}
    res = results(bus, "login.locked", b)
    assert res[0]["data"]["reason"] == "user_failure_budget"
    # the budget is spent: another login is locked without a compare,
    # whatever is typed
    assert submit(bus, a, ca) == {"login_id": a, "status": "locked",
                                  "attempts_left": 0}
    assert login_row(db, a)["status"] == "locked"
    c, _ = start_login(bus, cid)
    cc, _, _ = send_code(bus, c)
    assert submit(bus, c, cc)["status"] == "locked"
    # another user is not affected
    d, _ = start_login(bus, make_user(db))
    cd, _, _ = send_code(bus, d)
    assert submit(bus, d, cd)["status"] == "verified"

