"""mfa-contact-sync against real RabbitMQ and PostgreSQL.

Contact events go in through mfa.events like the CRM sends them; the
effects are read back from mfa.portal_users (the portal's read contract),
mfa.users, mfa.codes, mfa.logins, mfa.deliveries, mfa.audit, the
dispatch.notice jobs in mfa.dispatch.email, the contact.synced results and
mfa.dead. Contact events ask for no reply, so "processed" means the inbox
row of the event is committed.
"""
import json
import time
import uuid

import pika
import psycopg2
import pytest

from conftest import ADMIN_DSN, AMQP_URL, dsn_as, now_rfc3339

CS = "mfa-contact-sync"
MOBILE_NL = "+31 6 12345678"
MOBILE_NL_E164 = "+31612345678"
MOBILE_NL_2 = "06 87654321"           # national form: needs region NL
MOBILE_NL_2_E164 = "+31687654321"
MOBILE_BE = "0470 12 34 56"           # national form: needs region BE
MOBILE_BE_E164 = "+32470123456"


def new_cid():
    return "cs-" + uuid.uuid4().hex[:12]


def processed(db, event_id, timeout=15):
    """Waits until the worker committed the event (its inbox row)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if db.scalar("SELECT count(*) FROM mfa.inbox WHERE consumer = %s "
                     "AND event_id = %s", CS, event_id):
            return
        time.sleep(0.05)
    raise AssertionError("event %s not processed" % event_id)


def send(bus, db, etype, data, **kw):
    eid = bus.publish(etype, data, reply=False, **kw)
    processed(db, eid)
    return eid


def promote(bus, db, cid, email="jane@example.com", phone=MOBILE_NL, **kw):
    data = {"contact_id": cid, "organization_id": "org-1",
            "display_name": kw.pop("display_name", "Jane Doe"),
            "email": email, "phone": phone}
    for k in ("country", "locale"):
        if k in kw:
            data[k] = kw.pop(k)
    return send(bus, db, "contact.promoted", data, **kw)


def change(bus, db, cid, **fields):
    occurred_at = fields.pop("occurred_at", None)
    event_id = fields.pop("event_id", None)
    data = {"contact_id": cid}
    data.update(fields)
    return send(bus, db, "contact.changed", data, occurred_at=occurred_at,
                event_id=event_id)


def confirm(bus, db, cid, email):
    return send(bus, db, "user.email_confirmed",
                {"contact_id": cid, "email": email})


def portal_user(db, cid):
    return db.one("SELECT * FROM mfa.portal_users WHERE contact_id = %s", cid)


def user(db, cid):
    return db.one("SELECT * FROM mfa.users WHERE contact_id = %s", cid)


def audit(db, cid, action=None):
    sql = "SELECT * FROM mfa.audit WHERE contact_id = %s"
    args = [cid]
    if action:
        sql += " AND action = %s"
        args.append(action)
    return db.rows(sql + " ORDER BY 1", *args)


def make_login(db, cid, status="code_sent", channel="email"):
    """A login of cid with one live code on channel, as mfa-codes would
    leave it (written as admin). Returns (login_id, code_id)."""
    login_id = str(uuid.uuid4())
    db.execute("INSERT INTO mfa.logins (login_id, contact_id, status, "
               "methods, expires_at, max_attempts) VALUES (%s, %s, %s, "
               "ARRAY['email', 'sms'], now() + interval '15 min', 5)",
               login_id, cid, status)
    code_id = db.scalar(
        "INSERT INTO mfa.codes (login_id, delivery_id, channel, code_hash, "
        "key_id, expires_at) VALUES (%s, %s, %s, %s, 'k1', "
        "now() + interval '5 min') RETURNING code_id",
        login_id, str(uuid.uuid4()), channel, psycopg2.Binary(b"\0" * 32))
    return login_id, code_id


def code_live(db, code_id):
    return db.scalar("SELECT used_at IS NULL AND superseded_at IS NULL "
                     "FROM mfa.codes WHERE code_id = %s", code_id)


def synced(bus, cid, want=1, timeout=10):
    return bus.results(timeout=timeout, want=want,
                       match=lambda e: e["type"] == "contact.synced"
                       and e["data"].get("contact_id") == cid)


def notices(bus, cid, timeout=5, want=1):
    """dispatch.notice jobs for cid in mfa.dispatch.email (others stay)."""
    out = []
    deadline = time.time() + timeout
    while time.time() < deadline and len(out) < want:
        others = []
        while True:
            m, p, body = bus.ch.basic_get("mfa.dispatch.email",
                                          auto_ack=False)
            if m is None:
                break
            ev = json.loads(body)
            if ev["type"] == "dispatch.notice" and \
                    ev["data"].get("contact_id") == cid:
                bus.ch.basic_ack(m.delivery_tag)
                out.append((ev, p))
            else:
                others.append(m.delivery_tag)
        for t in others:
            bus.ch.basic_nack(t, requeue=True)
        if len(out) < want:
            bus.conn.process_data_events(time_limit=0.2)
    return out


@pytest.fixture
def cs(workers):
    return workers(CS)


# ---- promotion -------------------------------------------------------------

def test_promotion_creates_the_portal_user(cs, bus, db):
    cid = new_cid()
    promote(bus, db, cid, email="jane@example.com", phone=MOBILE_NL,
            locale="nl")
    pu = portal_user(db, cid)
    assert pu["organization_id"] == "org-1"
    assert pu["display_name"] == "Jane Doe"
    assert pu["email"] == "jane@example.com"
    assert pu["email_confirmed"] is False      # the portal confirms it
    assert pu["phone_e164"] == MOBILE_NL_E164
    assert pu["phone_status"] == "valid"
    assert pu["enabled"] is True
    u = user(db, cid)
    assert u["email_status"] == "valid"
    assert u["phone_type"] == "mobile"
    assert u["phone_sms_capable"] is True
    assert u["locale"] == "nl"
    assert [a["actor"] for a in audit(db, cid)] == [CS]


def test_phone_region_from_country_else_default(cs, bus, db):
    be, nl = new_cid(), new_cid()
    promote(bus, db, be, phone=MOBILE_BE, country="be")
    promote(bus, db, nl, phone=MOBILE_NL_2)      # default_region NL
    assert user(db, be)["country"] == "BE"
    assert portal_user(db, be)["phone_e164"] == MOBILE_BE_E164
    assert portal_user(db, nl)["phone_e164"] == MOBILE_NL_2_E164


def test_repromotion_reenables_and_updates(cs, bus, db):
    cid = new_cid()
    promote(bus, db, cid, display_name="Old Name")
    send(bus, db, "contact.demoted", {"contact_id": cid})
    assert portal_user(db, cid)["enabled"] is False
    promote(bus, db, cid, display_name="New Name", phone=MOBILE_NL_2)
    pu = portal_user(db, cid)
    assert pu["enabled"] is True
    assert pu["display_name"] == "New Name"
    assert pu["phone_e164"] == MOBILE_NL_2_E164
    assert db.scalar("SELECT count(*) FROM mfa.users WHERE contact_id = %s",
                     cid) == 1


# ---- changes ---------------------------------------------------------------

def test_email_change_unconfirms_supersedes_and_notifies_old_address(cs, bus, db):
    cid = new_cid()
    promote(bus, db, cid, email="old@example.com", locale="nl")
    confirm(bus, db, cid, "old@example.com")
    assert portal_user(db, cid)["email_confirmed"] is True
    _, email_code = make_login(db, cid, channel="email")
    _, sms_code = make_login(db, cid, channel="sms")

    change(bus, db, cid, email="new@example.com")

    pu = portal_user(db, cid)
    assert pu["email"] == "new@example.com"
    assert pu["email_confirmed"] is False
    assert code_live(db, email_code) is False   # the old mailbox's code ended
    assert code_live(db, sms_code) is True      # the phone did not change
    d = db.one("SELECT * FROM mfa.deliveries WHERE contact_id = %s", cid)
    assert d["kind"] == "notice" and d["channel"] == "email"
    assert d["status"] == "queued" and d["login_id"] is None
    jobs = notices(bus, cid)
    assert len(jobs) == 1
    ev, props = jobs[0]
    assert ev["data"]["to"] == "old@example.com"
    assert ev["data"]["template"] == "contact_changed"
    assert ev["data"]["delivery_id"] == str(d["delivery_id"])
    assert ev["data"]["locale"] == "nl"
    assert ev["data"]["display_name"] == "Jane Doe"
    assert props.message_id == ev["event_id"]
    assert props.delivery_mode == 2


def test_email_case_change_is_not_a_new_address(cs, bus, db):
    cid = new_cid()
    promote(bus, db, cid, email="jane@example.com")
    confirm(bus, db, cid, "jane@example.com")
    _, code = make_login(db, cid, channel="email")
    change(bus, db, cid, email="Jane@Example.com")
    pu = portal_user(db, cid)
    assert pu["email"] == "Jane@Example.com"
    assert pu["email_confirmed"] is True
    assert code_live(db, code) is True
    assert db.scalar("SELECT count(*) FROM mfa.deliveries "
                     "WHERE contact_id = %s", cid) == 0


def test_unconfirmed_old_email_gets_no_notice(cs, bus, db):
    cid = new_cid()
    promote(bus, db, cid, email="old@example.com")
    change(bus, db, cid, email="new@example.com")
    assert db.scalar("SELECT count(*) FROM mfa.deliveries "
                     "WHERE contact_id = %s", cid) == 0
    assert notices(bus, cid, timeout=1) == []


def test_phone_change_supersedes_sms_codes_and_unblocks(cs, bus, db):
    cid = new_cid()
    promote(bus, db, cid, email="jane@example.com", phone=MOBILE_NL)
    confirm(bus, db, cid, "jane@example.com")
    db.execute("UPDATE mfa.users SET phone_sms_blocked = '21610 unsubscribed' "
               "WHERE contact_id = %s", cid)
    _, email_code = make_login(db, cid, channel="email")
    _, sms_code = make_login(db, cid, channel="sms")

    change(bus, db, cid, phone=MOBILE_NL_2)

    pu = portal_user(db, cid)
    assert pu["phone_e164"] == MOBILE_NL_2_E164
    assert pu["phone_status"] == "valid"
    assert pu["email_confirmed"] is True        # email untouched
    assert user(db, cid)["phone_sms_blocked"] is None
    assert code_live(db, sms_code) is False
    assert code_live(db, email_code) is True
    # the (unchanged, confirmed) address is told its phone changed
    jobs = notices(bus, cid)
    assert len(jobs) == 1 and jobs[0][0]["data"]["to"] == "jane@example.com"


def test_same_phone_again_keeps_the_block(cs, bus, db):
    cid = new_cid()
    promote(bus, db, cid, phone=MOBILE_NL)
    db.execute("UPDATE mfa.users SET phone_sms_blocked = '21614 not a mobile' "
               "WHERE contact_id = %s", cid)
    _, sms_code = make_login(db, cid, channel="sms")
    change(bus, db, cid, phone="+31612345678")  # same number, other spelling
    assert user(db, cid)["phone_sms_blocked"] == "21614 not a mobile"
    assert code_live(db, sms_code) is True


def test_country_change_rereads_a_national_number(cs, bus, db):
    cid = new_cid()
    promote(bus, db, cid, phone=MOBILE_BE, country="NL")
    before = portal_user(db, cid)["phone_e164"]
    change(bus, db, cid, country="BE")
    assert portal_user(db, cid)["phone_e164"] == MOBILE_BE_E164
    assert before != MOBILE_BE_E164


def test_null_clears_present_fields_and_absent_ones_stay(cs, bus, db):
    cid = new_cid()
    promote(bus, db, cid, email="jane@example.com", phone=MOBILE_NL,
            locale="nl", country="NL")
    change(bus, db, cid, email=None, phone=None, locale=None)
    pu = portal_user(db, cid)
    assert pu["email"] is None and pu["phone_e164"] is None
    assert pu["phone_status"] == "missing"
    assert pu["display_name"] == "Jane Doe"     # absent: unchanged
    u = user(db, cid)
    assert u["email_status"] == "missing"
    assert u["locale"] is None
    assert u["country"] == "NL"
    change(bus, db, cid, display_name="", phone="")   # "" is null too
    assert portal_user(db, cid)["display_name"] is None
    assert portal_user(db, cid)["phone_status"] == "missing"


def test_stale_event_changes_nothing(cs, bus, db):
    cid = new_cid()
    promote(bus, db, cid, display_name="Current",
            occurred_at=now_rfc3339())
    eid = change(bus, db, cid, display_name="Older",
                 email="older@example.com", occurred_at=now_rfc3339(-60))
    pu = portal_user(db, cid)
    assert pu["display_name"] == "Current"
    assert pu["email"] == "jane@example.com"
    stale = audit(db, cid, "stale")
    assert len(stale) == 1 and str(stale[0]["event_id"]) == eid
    assert "stale event ignored" in cs.logs()
    # a newer one still applies
    change(bus, db, cid, display_name="Newer", occurred_at=now_rfc3339(5))
    assert portal_user(db, cid)["display_name"] == "Newer"
    # and a demotion older than that is stale too
    send(bus, db, "contact.demoted", {"contact_id": cid},
         occurred_at=now_rfc3339(-30))
    assert portal_user(db, cid)["enabled"] is True


def test_same_event_twice_has_one_effect(cs, bus, db):
    cid = new_cid()
    promote(bus, db, cid, email="old@example.com")
    confirm(bus, db, cid, "old@example.com")
    eid = str(uuid.uuid4())
    change(bus, db, cid, email="new@example.com", event_id=eid)
    change(bus, db, cid, email="new@example.com", event_id=eid)
    cs.wait_log("duplicate event")
    assert len([a for a in audit(db, cid) if str(a["event_id"]) == eid]) == 1
    assert db.scalar("SELECT count(*) FROM mfa.deliveries "
                     "WHERE contact_id = %s", cid) == 1
    # the stored follow-up is re-sent, with the same event id
    jobs = notices(bus, cid, want=2)
    assert len(jobs) == 2
    assert jobs[0][0]["event_id"] == jobs[1][0]["event_id"]


# ---- email confirmation ----------------------------------------------------

def test_confirmation_matching_the_current_email(cs, bus, db):
    cid = new_cid()
    promote(bus, db, cid, email="jane@example.com")
    confirm(bus, db, cid, "jane@example.com")
    assert portal_user(db, cid)["email_confirmed"] is True
    assert len(audit(db, cid, "email.confirmed")) == 1


def test_confirmation_is_case_insensitive(cs, bus, db):
    cid = new_cid()
    promote(bus, db, cid, email="Jane.Doe@Example.com")
    confirm(bus, db, cid, "jane.doe@EXAMPLE.COM")
    assert portal_user(db, cid)["email_confirmed"] is True


def test_confirmation_of_another_address_is_ignored(cs, bus, db):
    cid = new_cid()
    promote(bus, db, cid, email="old@example.com")
    change(bus, db, cid, email="new@example.com")
    confirm(bus, db, cid, "old@example.com")
    assert portal_user(db, cid)["email_confirmed"] is False
    a = audit(db, cid, "email.confirm_mismatch")
    assert len(a) == 1
    assert "old@example.com" not in json.dumps(a[0]["detail"])


def test_confirmation_older_than_the_address_is_stale(cs, bus, db):
    cid = new_cid()
    promote(bus, db, cid, email="jane@example.com",
            occurred_at=now_rfc3339())
    send(bus, db, "user.email_confirmed",
         {"contact_id": cid, "email": "jane@example.com"},
         occurred_at=now_rfc3339(-60))
    assert portal_user(db, cid)["email_confirmed"] is False
    assert len(audit(db, cid, "stale")) == 1


def test_confirmation_for_unknown_contact_is_acked(cs, bus, db):
    cid = new_cid()
    confirm(bus, db, cid, "x@example.com")
    assert portal_user(db, cid) is None
    assert bus.queue_depth("mfa.contact-sync") == 0


# ---- demotion --------------------------------------------------------------

def test_demotion_disables_and_cancels_open_logins(cs, bus, db):
    cid = new_cid()
    promote(bus, db, cid)
    pending, _ = make_login(db, cid, status="pending", channel="email")
    sent, sent_code = make_login(db, cid, status="code_sent", channel="sms")
    done, _ = make_login(db, cid, status="verified", channel="email")
    send(bus, db, "contact.demoted", {"contact_id": cid})
    assert portal_user(db, cid)["enabled"] is False
    st = {str(r["login_id"]): r["status"] for r in db.rows(
        "SELECT login_id, status FROM mfa.logins WHERE contact_id = %s", cid)}
    assert st[pending] == "cancelled"
    assert st[sent] == "cancelled"
    assert st[done] == "verified"
    assert code_live(db, sent_code) is False
    assert len(audit(db, cid, "contact.demoted")) == 1


# ---- validation ------------------------------------------------------------

@pytest.mark.parametrize("phone", ["12", "+31 6 1234", "call me maybe",
                                   "+31 6 12345678 ext. 12"])
def test_invalid_phone_leaves_it_blank_with_the_reason(cs, bus, db, phone):
    cid = new_cid()
    promote(bus, db, cid, phone=phone)
    pu = portal_user(db, cid)
    assert pu["phone_e164"] is None
    assert pu["phone_status"] == "invalid"
    u = user(db, cid)
    assert u["phone_reason"]
    assert u["phone_sms_capable"] is False
    assert synced(bus, cid)[0]["data"]["phone_status"] == "invalid"


@pytest.mark.parametrize("email", ["not-an-email", "jane@localhost",
                                   "two@@example.com", "a b@example.com"])
def test_invalid_email_is_kept_out(cs, bus, db, email):
    cid = new_cid()
    promote(bus, db, cid, email=email)
    pu = portal_user(db, cid)
    assert pu["email"] is None
    assert pu["email_confirmed"] is False
    u = user(db, cid)
    assert u["email_status"] == "invalid"
    assert u["email_reason"]
    # and a confirmation cannot bring it in
    confirm(bus, db, cid, email if "@" in email else "x@example.com")
    assert portal_user(db, cid)["email_confirmed"] is False


def test_missing_email_and_phone(cs, bus, db):
    cid = new_cid()
    promote(bus, db, cid, email=None, phone="")
    u = user(db, cid)
    assert u["email"] is None and u["email_status"] == "missing"
    assert u["phone_e164"] is None and u["phone_status"] == "missing"
    assert u["phone_reason"] is None and u["email_reason"] is None


def test_contact_synced_result_has_statuses_but_no_values(cs, bus, db):
    cid = new_cid()
    promote(bus, db, cid, email="jane@example.com", phone=MOBILE_NL)
    res = synced(bus, cid)
    assert res, "no contact.synced for %s" % cid
    data = res[0]["data"]
    assert data["phone_status"] == "valid"
    assert data["email_status"] == "valid"
    body = json.dumps(res[0])
    assert "jane" not in body and "example.com" not in body
    assert "612345678" not in body
    for a in audit(db, cid):
        text = json.dumps(a["detail"])
        assert "jane@" not in text and "612345678" not in text
    for line in cs.log_lines():
        assert "jane@example.com" not in json.dumps(line)
        assert "612345678" not in json.dumps(line)


# ---- bad input -------------------------------------------------------------

def _raw(etype, data):
    return json.dumps({"event_id": str(uuid.uuid4()), "type": etype,
                       "occurred_at": now_rfc3339(), "data": data}).encode()


BAD = [
    ("missing contact_id",
     _raw("contact.changed", {"display_name": "x"}), "data.contact_id: missing"),
    ("contact_id not a string",
     _raw("contact.demoted", {"contact_id": 42}), "data.contact_id: not a string"),
    ("email not a string",
     _raw("contact.changed", {"contact_id": "c1", "email": ["a@b.c"]}),
     "data.email: not a string"),
    ("display_name too long",
     _raw("contact.changed", {"contact_id": "c1", "display_name": "x" * 201}),
     "data.display_name: too long"),
    ("phone too long",
     _raw("contact.changed", {"contact_id": "c1", "phone": "1" * 65}),
     "data.phone: too long"),
    ("email too long",
     _raw("contact.changed", {"contact_id": "c1",
                              "email": "a" * 250 + "@example.com"}),
     "data.email: too long"),
    ("control character in the name",
     _raw("contact.changed", {"contact_id": "c1", "display_name": "Jane\x07"}),
     "data.display_name: contains control characters"),
    ("newline in the name",
     _raw("contact.promoted", {"contact_id": "c1", "organization_id": "o",
                               "display_name": "Jane\nDoe", "email": None,
                               "phone": None}),
     "data.display_name: contains control characters"),
    ("invalid UTF-8",
     b'{"event_id":"' + str(uuid.uuid4()).encode() + b'","type":"contact.changed",'
     b'"occurred_at":"2026-11-29T10:00:00Z","data":{"contact_id":"c1",'
     b'"display_name":"J\xc3\x28ne"}}', "not valid UTF-8"),
    ("not JSON", b"{contact_id: c1", "not valid JSON"),
    ("promotion without email key",
     _raw("contact.promoted", {"contact_id": "c1", "organization_id": "o",
                               "display_name": "J", "phone": None}),
     "data.email: missing"),
    ("bad country",
     _raw("contact.changed", {"contact_id": "c1", "country": "NLD"}),
     "data.country"),
]


def test_bad_input_is_dead_lettered_with_a_reason(cs, bus, db):
    ids = {}
    for name, body, _ in BAD:
        mid = str(uuid.uuid4())
        ids[mid] = name
        etype = "contact.changed"
        try:
            etype = json.loads(body)["type"]
        except ValueError:
            pass
        props = pika.BasicProperties(content_type="application/json",
                                     delivery_mode=2, message_id=mid,
                                     type=etype)
        bus.ch.basic_publish("mfa.events", etype, body, props, mandatory=True)
    # a login event routed here by mistake: valid, but not ours
    misrouted = str(uuid.uuid4())
    body = json.dumps({"event_id": misrouted, "type": "login.started",
                       "occurred_at": now_rfc3339(),
                       "data": {"login_id": str(uuid.uuid4()),
                                "contact_id": "c1"}}).encode()
    bus.ch.basic_publish("mfa.events", "contact.misrouted", body,
                         pika.BasicProperties(delivery_mode=2,
                                              message_id=misrouted,
                                              type="login.started"),
                         mandatory=True)
    ids[misrouted] = "misrouted"
    dead = bus.dead(lambda m: m["props"].message_id in ids, timeout=20,
                    want=len(ids))
    got = {m["props"].message_id: m["headers"] for m in dead}
    assert set(got) == set(ids), (cs.proc.poll(), cs.logs()[-3000:])
    want = {mid: w for mid, (n, _, w) in zip(list(ids)[:len(BAD)], BAD)}
    for mid, text in want.items():
        err = got[mid]["x-mfa-error"]
        assert err.startswith("invalid event: "), (ids[mid], err)
        assert text in err, (ids[mid], err)
        assert got[mid]["x-mfa-origin"] == "mfa.contact-sync"
    assert "does not handle login.started" in got[misrouted]["x-mfa-error"]
    # nothing reached the database, and the worker goes on
    assert db.scalar("SELECT count(*) FROM mfa.users WHERE contact_id = 'c1'") == 0
    cid = new_cid()
    promote(bus, db, cid)
    assert portal_user(db, cid)["enabled"] is True
    assert cs.proc.poll() is None
    assert bus.queue_depth("mfa.contact-sync") == 0


# ---- privileges ------------------------------------------------------------

def contact_columns(db):
    """(relation, column) of every mfa table or view column holding an
    email or phone (value, status, reason...)."""
    return [(r["rel"], r["col"]) for r in db.rows(
        "SELECT c.relname AS rel, a.attname AS col "
        "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'mfa' AND c.relkind IN ('r', 'v', 'm', 'p') "
        "AND a.attnum > 0 AND NOT a.attisdropped "
        "AND (a.attname LIKE '%%email%%' OR a.attname LIKE '%%phone%%') "
        "ORDER BY 1, 2")]


def test_portal_role_cannot_write_email_or_phone(cs, bus, db):
    cid = new_cid()
    promote(bus, db, cid, email="jane@example.com", phone=MOBILE_NL)
    cols = contact_columns(db)
    rels = {r for r, _ in cols}
    assert {"users", "portal_users"} <= rels
    assert ("users", "email") in cols and ("users", "phone_e164") in cols
    for rel, col in cols:
        for priv in ("UPDATE", "INSERT"):
            assert db.scalar("SELECT has_column_privilege('mfa_portal', "
                             "%s, %s, %s)", "mfa." + rel, col, priv) is False, \
                (rel, col, priv)
    # and the attempts themselves are refused
    portal = psycopg2.connect(dsn_as("mfa_portal"))
    portal.autocommit = True
    try:
        attempts = [
            ("UPDATE mfa.users SET email = 'evil@example.com' "
             "WHERE contact_id = %s", (cid,)),
            ("UPDATE mfa.users SET phone_e164 = '+15005550006' "
             "WHERE contact_id = %s", (cid,)),
            ("UPDATE mfa.users SET email_confirmed = true "
             "WHERE contact_id = %s", (cid,)),
            ("UPDATE mfa.portal_users SET email = 'evil@example.com' "
             "WHERE contact_id = %s", (cid,)),
            ("UPDATE mfa.portal_users SET phone_e164 = '+15005550006' "
             "WHERE contact_id = %s", (cid,)),
            ("INSERT INTO mfa.users (contact_id, organization_id, email, "
             "phone_e164) VALUES ('evil', 'o', 'evil@example.com', "
             "'+15005550006')", ()),
            ("INSERT INTO mfa.portal_users (contact_id, organization_id, "
             "email, phone_e164) VALUES ('evil', 'o', 'evil@example.com', "
             "'+15005550006')", ()),
        ]
        for rel, col in cols:
            attempts.append(("UPDATE mfa.%s SET %s = NULL" % (rel, col), ()))
            attempts.append(("INSERT INTO mfa.%s (%s) VALUES (NULL)"
                             % (rel, col), ()))
        for sql, args in attempts:
            with portal.cursor() as cur:
                with pytest.raises(psycopg2.Error) as exc:
                    cur.execute(sql, args)
                # refused for privileges (or a view that cannot be written)
                assert exc.value.pgcode in ("42501", "55000", "0A000"), \
                    (sql, exc.value.pgcode, str(exc.value))
        # the portal can still read its view
        with portal.cursor() as cur:
            cur.execute("SELECT email, phone_e164 FROM mfa.portal_users "
                        "WHERE contact_id = %s", (cid,))
            assert cur.fetchone() == ("jane@example.com", MOBILE_NL_E164)
    finally:
        portal.close()
    pu = portal_user(db, cid)
    assert pu["email"] == "jane@example.com"
    assert pu["phone_e164"] == MOBILE_NL_E164
    assert pu["email_confirmed"] is False


def test_worker_role_can_write_email_and_phone(db):
    cid = new_cid()
    w = psycopg2.connect(dsn_as("mfa_worker"))
    try:
        with w.cursor() as cur:
            cur.execute("INSERT INTO mfa.users (contact_id, organization_id, "
                        "display_name, email, email_status, phone_input, "
                        "phone_e164, phone_status) VALUES (%s, 'o', 'n', "
                        "'a@example.com', 'valid', %s, %s, 'valid')",
                        (cid, MOBILE_NL, MOBILE_NL_E164))
            cur.execute("UPDATE mfa.users SET email = 'b@example.com', "
                        "email_status = 'valid', email_reason = NULL, "
                        "email_confirmed = false, phone_e164 = NULL, "
                        "phone_input = NULL, phone_status = 'missing', "
                        "phone_reason = NULL, phone_type = NULL, "
                        "phone_sms_capable = false, "
                        "phone_sms_blocked = NULL WHERE contact_id = %s",
                        (cid,))
            assert cur.rowcount == 1
        w.rollback()
    finally:
        w.close()
