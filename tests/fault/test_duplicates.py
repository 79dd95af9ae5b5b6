"""A question asked twice must not reach the user twice.

The portal publishes the same login.code_requested again (same event_id)
when its reply is late, as docs/events.md tells it to. mfa-codes answers
the copy from its inbox and publishes the stored follow-ups again: the
same dispatch.code job (same event_id) reaches mfa-email / mfa-sms a
second time. If the first copy is still with the provider (a slow SMTP
server or Twilio), the second must wait for it and then find the inbox
row, instead of sending the code a second time.

Found by the fault run: during a slow broker the portal's retries made
29 of 300 emails arrive twice, 0.3 s apart.
"""
import uuid

import pytest

import checks
from conftest import AMQP_URL, FAULT_ENV, have, smtp_control, spool_by_rcpt
from portal import Portal

N = 8


def make_users(db, n, phone=False):
    users = []
    for i in range(n):
        u = type("U", (), {})()
        u.cid = "dup-%s" % uuid.uuid4().hex[:12]
        u.email = "dup-%s@example.com" % uuid.uuid4().hex[:12]
        u.phone = "+3162%07d" % (int(uuid.uuid4().int) % 10 ** 7)
        u.channel = "sms" if phone else "email"
        u.login_id = str(uuid.uuid4())
        u.requested = u.delivery = u.code = None
        users.append(u)
        db.execute("INSERT INTO mfa.users (contact_id, organization_id, "
                   "display_name, email, email_status, email_confirmed, "
                   "phone_e164, phone_status, phone_sms_capable, phone_type, "
                   "locale) VALUES (%s, 'org-dup', 'Dup', %s, 'valid', true, "
                   "%s, %s, %s, %s, 'en')", u.cid, u.email,
                   u.phone if phone else None,
                   "valid" if phone else "missing", phone,
                   "mobile" if phone else None)
    return users


def ask_twice(portal, users, channel):
    for u in users:
        r = portal.call("login.started",
                        {"login_id": u.login_id, "contact_id": u.cid})
        assert r["status"] == "pending" and channel in r["methods"], r
    eids = []
    for u in users:
        data = {"login_id": u.login_id, "method": channel}
        eid = portal.publish("login.code_requested", data, want_reply=False)
        # the same event again, at once: a portal that timed out
        portal.publish("login.code_requested", data, want_reply=False,
                       event_id=eid)
        eids.append(eid)
    portal.drain(30)
    return eids


def test_the_same_request_twice_sends_one_email(db, make_fleet):
    fleet = make_fleet(FAULT_ENV)
    fleet.start("mfa-codes")
    fleet.start("mfa-email")
    users = make_users(db, N)
    portal = Portal(AMQP_URL)
    try:
        # slow enough that the first copy is still being sent
        smtp_control({"mode": "delay_ms", "ms": 1500})
        ask_twice(portal, users, "email")
        rows = checks.wait_final(db, [u.login_id for u in users], 60)
    finally:
        smtp_control({"mode": "ok"})
        portal.close()
    assert len(rows) == N and {r["status"] for r in rows} == {"sent"}, rows
    spool = spool_by_rcpt()
    copies = {u.email: len(spool.get(u.email.lower(), [])) for u in users}
    assert fleet.stop_all() == {"mfa-codes": 0, "mfa-email": 0}
    assert not fleet.sanitizer_reports()
    assert set(copies.values()) == {1}, copies


def test_the_same_request_twice_sends_one_sms(db, make_fleet, twilio):
    if twilio is None or not have("mfa-sms"):
        pytest.skip("mfa-sms or the Twilio fake is not there")
    env = dict(FAULT_ENV, MFA_SMS_TWILIO_API_BASE=twilio.url)
    fleet = make_fleet(env)
    fleet.start("mfa-codes")
    fleet.start("mfa-sms")
    users = make_users(db, N, phone=True)
    for u in users:
        twilio.script(u.phone, {"status": 201, "delay_ms": 1500})
    portal = Portal(AMQP_URL)
    try:
        ask_twice(portal, users, "sms")
        rows = checks.wait_final(db, [u.login_id for u in users], 60)
    finally:
        portal.close()
    assert len(rows) == N and {r["status"] for r in rows} == {"sent"}, rows
    reqs = twilio.all_requests()
    copies = {u.phone: sum(1 for r in reqs if r["form"].get("To") == u.phone)
              for u in users}
    assert fleet.stop_all() == {"mfa-codes": 0, "mfa-sms": 0}
    assert not fleet.sanitizer_reports()
    assert set(copies.values()) == {1}, copies
