"""Abuse: what an attacker with a password (or a script) can try, against
real RabbitMQ and PostgreSQL and the real mfa-codes.

- Guessing: 1,000 wrong codes on one login, from one connection and from
  ten connections at once over two mfa-codes processes: exactly
  codes.max_attempts tries are counted, then the login is locked and
  stays locked (the right code too); parallel logins of one user share
  the user's hourly failure budget, so they do not multiply the guesses.
- Flooding code_requested: the resend cooldown, the per-login and the
  per-user hourly send limits hold under concurrent floods.
- SMS pumping: many users and logins aimed at one number get at most
  phone.max_sms_per_number_per_day SMS; numbers outside
  phone.sms_allowed_regions get none, even when SMS was offered earlier
  by a worker without the allow-list.
- Codes out of place: a used code (replayed as a new event), a code of
  another login, a superseded code are refused.

Counts are checked where the policy keeps them (mfa.logins.tries,
mfa.verify_failures, mfa.code_requests, mfa.codes) and on the wire (the
replies, the dispatch jobs, the login.locked results). Helpers come from
test_codes.py; users are inserted as the admin.
"""
import json
import random
import threading
import time
import uuid

import pytest

from conftest import Bus
from mfa_crypto import dest_hash, sodium
from test_codes import (CODES, SMS_COMPLETE, clear_sms_settings, login_row,
                        make_user, new_mobile, request, results, send_code,
                        set_sms_settings, start_login, submit, take_jobs)

pytestmark = pytest.mark.skipif(sodium is None, reason="python3-nacl missing")

CONNS = 10      # pika connections flooding at once


# ---- floods over many connections ---------------------------------------

def flood(items, conns=CONNS, timeout=90):
    """Publishes (type, data) items spread over `conns` pika connections,
    one thread each, all starting together; returns the replies in the
    order of items."""
    out = [None] * len(items)
    errors = []
    ready = threading.Barrier(conns)

    def run(k):
        b = None
        try:
            b = Bus()
            mine = list(range(k, len(items), conns))
            ready.wait(30)
            sent = [(i, b.publish(*items[i])) for i in mine]
            for i, eid in sent:
                out[i] = b.wait_reply(eid, timeout=timeout)
        except Exception as e:  # reported below, in the test's thread
            errors.append(repr(e))
            ready.abort()
        finally:
            if b:
                b.close()

    threads = [threading.Thread(target=run, args=(k,)) for k in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout + 60)
    assert not errors, errors
    assert all(r is not None for r in out)
    return out


def wrong_codes(code, n):
    """n guesses that are not the code: mostly 6 digits, some malformed
    (a malformed code is a counted wrong try as well)."""
    out = []
    while len(out) < n:
        g = "%06d" % random.randrange(10 ** 6)
        if len(out) % 10 == 9:
            g = random.choice(["12345", "1234567", "abcdef", " " + g])
        if g != code:
            out.append(g)
    return out


def take_all(bus, channel, lids, settle=1.0):
    """Every dispatch job of these logins in mfa.dispatch.<channel>
    (acked; other jobs are put back), once none came for settle s."""
    lids = set(lids)
    out = []
    quiet_since = time.time()
    while time.time() - quiet_since < settle:
        others, got = [], 0
        while True:
            m, p, body = bus.ch.basic_get("mfa.dispatch." + channel,
                                          auto_ack=False)
            if m is None:
                break
            job = json.loads(body)
            if job.get("data", {}).get("login_id") in lids:
                bus.ch.basic_ack(m.delivery_tag)
                out.append(job)
                got += 1
            else:
                others.append(m.delivery_tag)
        for t in others:
            bus.ch.basic_nack(t, requeue=True)
        if got:
            quiet_since = time.time()
        bus.conn.process_data_events(time_limit=0.1)
    return out


def locked_results(bus, lids, timeout=5):
    """login.locked results of these logins, by login."""
    lids = set(lids)
    def match(e):
        return e["type"] == "login.locked" and \
            e["data"].get("login_id") in lids

    got = bus.results(timeout=timeout, want=len(lids), match=match)
    got += bus.results(timeout=1, match=match)     # and no second one
    out = {}
    for e in got:
        out.setdefault(e["data"]["login_id"], []).append(e["data"])
    return out


def tries(db, lid):
    return db.scalar("SELECT tries FROM mfa.logins WHERE login_id = %s", lid)


def failures(db, lid=None, cid=None):
    if lid:
        return db.scalar("SELECT count(*) FROM mfa.verify_failures "
                         "WHERE login_id = %s", lid)
    return db.scalar("SELECT count(*) FROM mfa.verify_failures "
                     "WHERE contact_id = %s", cid)


def statuses(replies):
    out = {}
    for r in replies:
        out[r["status"]] = out.get(r["status"], 0) + 1
    return out


def outcomes(db, where, *params):
    return {r["outcome"]: r["n"] for r in db.rows(
        "SELECT outcome, count(*) AS n FROM mfa.code_requests WHERE " +
        where + " GROUP BY outcome", *params)}


def assert_locked_for_good(bus, db, lid, code, max_attempts=5):
    """Locked, with the right code refused and nothing more counted."""
    before = tries(db, lid)
    assert submit(bus, lid, code) == {"login_id": lid, "status": "locked",
                                      "attempts_left": 0}
    assert request(bus, lid)["status"] == "locked"
    row = login_row(db, lid)
    assert row["status"] == "locked" and row["verified_at"] is None
    assert row["attempts_left"] == 0
    assert tries(db, lid) == before <= max_attempts


# ---- guessing ------------------------------------------------------------

def test_thousand_wrong_codes_lock_after_max_attempts(workers, bus, db):
    workers(CODES)
    cid = make_user(db)
    lid, _ = start_login(bus, cid)
    code, _, _ = send_code(bus, lid)
    guesses = wrong_codes(code, 1000)
    eids = [bus.publish("login.code_submitted",
                        {"login_id": lid, "code": g}) for g in guesses]
    replies = [bus.wait_reply(e, timeout=60) for e in eids]

    # one consumer, in order: 4 x invalid counting down, then locked
    assert replies[:4] == [{"login_id": lid, "status": "invalid",
                            "attempts_left": n} for n in (4, 3, 2, 1)]
    assert [r for r in replies[4:] if r != {
        "login_id": lid, "status": "locked", "attempts_left": 0}] == []
    # exactly max_attempts tries and failures were counted, no more
    assert tries(db, lid) == 5
    assert failures(db, lid=lid) == 5
    assert failures(db, cid=cid) == 5
    acts = [r["action"] for r in db.rows(
        "SELECT action FROM mfa.audit WHERE login_id = %s", lid)]
    assert acts.count("code.invalid") == 5
    assert acts.count("login.locked") == 1
    assert acts.count("code.refused") == 995
    assert len(results(bus, "login.locked", lid, want=2, timeout=2)) == 1
    assert_locked_for_good(bus, db, lid, code)


def test_thousand_wrong_codes_from_ten_connections_two_workers(workers, bus,
                                                               db):
    w1 = workers(CODES, MFA_AMQP_PREFETCH=20)
    w2 = workers(CODES, MFA_AMQP_PREFETCH=20)
    cid = make_user(db)
    lid, _ = start_login(bus, cid)
    code, _, _ = send_code(bus, lid)
    guesses = wrong_codes(code, 1000)
    replies = flood([("login.code_submitted", {"login_id": lid, "code": g})
                     for g in guesses])

    st = statuses(replies)
    assert st == {"invalid": 4, "locked": 996}, st
    assert sorted(r["attempts_left"] for r in replies
                  if r["status"] == "invalid") == [1, 2, 3, 4]
    assert tries(db, lid) == 5
    assert failures(db, lid=lid) == 5
    assert len(results(bus, "login.locked", lid, want=2, timeout=2)) == 1
    # both processes took submissions of this one login
    for w in (w1, w2):
        assert "login_id\":\"%s" % lid in w.logs(), w.logs()[-2000:]
    assert_locked_for_good(bus, db, lid, code)


def test_parallel_logins_share_the_user_failure_budget(workers, bus, db):
    workers(CODES, MFA_AMQP_PREFETCH=20)
    workers(CODES, MFA_AMQP_PREFETCH=20)
    cid = make_user(db)
    logins = []
    for _ in range(CONNS):
        lid, _ = start_login(bus, cid)
        code, _, _ = send_code(bus, lid)
        logins.append((lid, code))
    # every connection guesses on a login of its own, 20 times
    items = []
    for _ in range(20):
        for lid, code in logins:
            items.append(("login.code_submitted",
                          {"login_id": lid,
                           "code": wrong_codes(code, 1)[0]}))
    replies = flood(items)

    # the budget (codes.max_failures_per_user_per_hour = 10) is the
    # ceiling over all ten logins together, not 10 x max_attempts
    assert failures(db, cid=cid) == 10
    st = statuses(replies)
    # the 10th failure locks; so does a login's own 5th (at most two
    # logins can get there before the budget is spent)
    assert set(st) == {"invalid", "locked"}, st
    assert st["invalid"] in (8, 9) and st["invalid"] + st["locked"] == 200
    locked = locked_results(bus, [lid for lid, _ in logins], timeout=10)
    reasons = []
    for lid, code in logins:
        assert login_row(db, lid)["status"] == "locked"
        assert tries(db, lid) <= 5
        assert len(locked.get(lid, [])) == 1, (lid, locked)
        reasons.append(locked[lid][0]["reason"])
    assert "user_failure_budget" in reasons
    assert set(reasons) <= {"user_failure_budget", "max_attempts"}
    # the right codes do not get through now, on any of the logins
    for lid, code in logins:
        assert submit(bus, lid, code)["status"] == "locked"
    # nor will a new login take guesses this hour
    lid, _ = start_login(bus, cid)
    assert submit(bus, lid, "000000") == {"login_id": lid,
                                          "status": "locked",
                                          "attempts_left": 0}
    assert failures(db, cid=cid) == 10


# ---- flooding code_requested ---------------------------------------------

def test_resend_flood_during_cooldown_sends_one_code(workers, bus, db):
    workers(CODES, MFA_AMQP_PREFETCH=20)         # cooldown: 30 s default
    workers(CODES, MFA_AMQP_PREFETCH=20)
    lid, _ = start_login(bus, make_user(db))
    replies = flood([("login.code_requested",
                      {"login_id": lid, "method": "email"})] * 200)

    st = statuses(replies)
    assert st == {"sent": 1, "rate_limited": 199}, st
    assert all(1 <= r["retry_after_s"] <= 30 for r in replies
               if r["status"] == "rate_limited")
    assert len(take_jobs(bus, lid, want=2, timeout=2)) == 1
    assert db.scalar("SELECT count(*) FROM mfa.codes WHERE login_id = %s",
                     lid) == 1
    assert db.scalar("SELECT sends FROM mfa.logins WHERE login_id = %s",
                     lid) == 1
    # every request is recorded; only the accepted one counts
    assert outcomes(db, "login_id = %s", lid) == {"sent": 1,
                                                  "rate_limited": 199}


def test_resend_flood_holds_login_and_user_limits(workers, bus, db):
    workers(CODES, MFA_AMQP_PREFETCH=20, MFA_CODES_RESEND_COOLDOWN_SECONDS=0)
    workers(CODES, MFA_AMQP_PREFETCH=20, MFA_CODES_RESEND_COOLDOWN_SECONDS=0)
    # one user, one login: codes.max_sends_per_login (5)
    one = make_user(db)
    lid, _ = start_login(bus, one)
    # another user, four logins: codes.max_sends_per_user_per_hour (10)
    many = make_user(db)
    logins = [start_login(bus, many)[0] for _ in range(4)]
    items = [("login.code_requested", {"login_id": lid, "method": "email"})
             for _ in range(100)]
    for _ in range(40):
        for x in logins:
            items.append(("login.code_requested",
                          {"login_id": x, "method": "email"}))
    replies = flood(items)

    assert statuses(replies[:100]) == {"sent": 5, "rate_limited": 95}
    assert statuses(replies[100:]) == {"sent": 10, "rate_limited": 150}
    assert len(take_jobs(bus, lid, want=6, timeout=2)) == 5
    assert db.scalar("SELECT sends FROM mfa.logins WHERE login_id = %s",
                     lid) == 5
    assert outcomes(db, "contact_id = %s", one) == {"sent": 5,
                                                    "rate_limited": 95}
    assert outcomes(db, "contact_id = %s", many) == {"sent": 10,
                                                     "rate_limited": 150}
    per_login = [db.scalar("SELECT sends FROM mfa.logins WHERE login_id = "
                           "%s", x) for x in logins]
    assert sum(per_login) == 10 and max(per_login) <= 5
    assert len(take_all(bus, "email", logins)) == 10
    # one live code per login, whatever the flood
    assert db.scalar("SELECT max(n) FROM (SELECT count(*) AS n FROM "
                     "mfa.codes WHERE login_id = ANY(%s::uuid[]) AND "
                     "used_at IS NULL AND superseded_at IS NULL "
                     "GROUP BY login_id) x", logins + [lid]) == 1


def test_queued_requests_in_full_batches_hold_the_user_limit(workers, bus,
                                                             db):
    """Requests queued while mfa-codes is down arrive as full batches: a
    batch reads every request's facts at once, so a user with several
    logins in one batch must still be counted request by request (each
    after the one before), and users alone in a batch keep theirs too."""
    w = workers(CODES, MFA_CODES_RESEND_COOLDOWN_SECONDS=0)
    many = make_user(db)
    logins = [start_login(bus, many)[0] for _ in range(4)]
    solo = [start_login(bus, make_user(db))[0] for _ in range(8)]
    assert w.stop() == 0
    sent = []
    for _ in range(6):
        for x in logins + solo[:2]:
            sent.append((x, bus.publish("login.code_requested",
                                        {"login_id": x, "method": "email"})))
    for x in solo[2:]:
        sent.append((x, bus.publish("login.code_requested",
                                    {"login_id": x, "method": "email"})))
    workers(CODES, MFA_CODES_RESEND_COOLDOWN_SECONDS=0)
    replies = [(x, bus.wait_reply(eid)) for x, eid in sent]

    mine = [r for x, r in replies if x in logins]
    assert statuses(mine) == {"sent": 10, "rate_limited": 14}
    assert outcomes(db, "contact_id = %s", many) == {"sent": 10,
                                                     "rate_limited": 14}
    # solo[0] and solo[1]: 6 each, the login's limit is 5
    for x in solo[:2]:
        assert statuses([r for y, r in replies if y == x]) == {
            "sent": 5, "rate_limited": 1}
    assert all(r["status"] == "sent" for x, r in replies if x in solo[2:])
    assert len(take_all(bus, "email", logins + solo)) == 10 + 10 + 6
    # every accepted request has its code and delivery; one live per login
    for x in logins + solo:
        n = db.scalar("SELECT sends FROM mfa.logins WHERE login_id = %s", x)
        assert db.scalar("SELECT count(*) FROM mfa.codes c JOIN "
                         "mfa.deliveries d USING (delivery_id) "
                         "WHERE c.login_id = %s", x) == n
        assert db.scalar("SELECT count(*) FROM mfa.codes WHERE login_id = %s "
                         "AND used_at IS NULL AND superseded_at IS NULL",
                         x) == 1


# ---- SMS pumping ----------------------------------------------------------

@pytest.fixture
def sms_settings(db):
    """A complete SMS settings row (layout: shared/mfa/methods.c) for the
    test; the row found before is put back afterwards."""
    saved = db.one("SELECT value::text AS value, secret_sealed, updated_by "
                   "FROM mfa.settings WHERE name = 'sms'")
    set_sms_settings(db)
    yield SMS_COMPLETE
    clear_sms_settings(db)
    if saved:
        db.execute("INSERT INTO mfa.settings (name, value, secret_sealed, "
                   "updated_by) VALUES ('sms', %s::jsonb, %s, %s)",
                   saved["value"], saved["secret_sealed"],
                   saved["updated_by"])


def test_sms_pumping_one_number_capped_per_day(workers, bus, db,
                                               sms_settings):
    env = dict(MFA_AMQP_PREFETCH=20, MFA_CODES_RESEND_COOLDOWN_SECONDS=0,
               MFA_PHONE_SMS_ALLOWED_REGIONS="NL,BE")
    workers(CODES, **env)
    workers(CODES, **env)
    phone = new_mobile()
    # fifteen accounts carrying the same number, two logins each
    users = [make_user(db, phone=phone) for _ in range(15)]
    logins = []
    for cid in users:
        for _ in range(2):
            lid, r = start_login(bus, cid)
            assert r["methods"] == ["email", "sms"]
            logins.append(lid)
    items = []
    for _ in range(3):
        for lid in logins:
            items.append(("login.code_requested",
                          {"login_id": lid, "method": "sms"}))
    replies = flood(items)

    # phone.max_sms_per_number_per_day (10), whoever asks
    st = statuses(replies)
    assert st == {"sent": 10, "rate_limited": 80}, st
    assert db.scalar("SELECT count(*) FROM mfa.code_requests WHERE "
                     "dest_hash = %s AND channel = 'sms' AND "
                     "outcome = 'sent'", dest_hash(phone)) == 10
    assert len(take_all(bus, "sms", logins)) == 10
    assert db.scalar("SELECT count(*) FROM mfa.deliveries WHERE "
                     "channel = 'sms' AND contact_id = ANY(%s)", users) == 10
    # the cap is the number's: email still works for these users
    lid = logins[-1]
    assert request(bus, lid, "email")["status"] == "sent"
    assert len(take_jobs(bus, lid, "email")) == 1
    # and another number is not affected
    lid2, _ = start_login(bus, make_user(db, phone=new_mobile()))
    assert request(bus, lid2, "sms")["status"] == "sent"
    assert len(take_jobs(bus, lid2, "sms")) == 1


def test_sms_pumping_region_allow_list_holds(workers, bus, db, sms_settings):
    # logins opened by a worker that allows every region ...
    open_all = workers(CODES)
    de = ["+49151%08d" % random.randrange(10 ** 8) for _ in range(5)]
    users = [make_user(db, phone=p) for p in de]
    early = []
    for cid in users:
        lid, r = start_login(bus, cid)
        assert r["methods"] == ["email", "sms"], r
        early.append(lid)
    open_all.stop()
    # ... are asked for SMS at workers that allow NL and BE only
    env = dict(MFA_AMQP_PREFETCH=20, MFA_CODES_RESEND_COOLDOWN_SECONDS=0,
               MFA_PHONE_SMS_ALLOWED_REGIONS="NL,BE")
    workers(CODES, **env)
    workers(CODES, **env)
    late = []
    for cid in users:
        lid, r = start_login(bus, cid)
        assert r["methods"] == ["email"] and r["phone_hint"] is None, r
        late.append(lid)
    items = [("login.code_requested", {"login_id": lid, "method": "sms"})
             for lid in early + late for _ in range(10)]
    replies = flood(items)

    assert statuses(replies) == {"method_unavailable": 100}
    assert take_all(bus, "sms", early + late, settle=0.5) == []
    assert db.scalar("SELECT count(*) FROM mfa.deliveries WHERE "
                     "contact_id = ANY(%s)", users) == 0
    reasons = {r["detail"]["reason"] for r in db.rows(
        "SELECT detail FROM mfa.audit WHERE login_id = ANY(%s::uuid[]) "
        "AND action = 'code.refused'", early + late)}
    assert reasons == {"sms: region DE not allowed",
                       "not offered when the login started"}, reasons


# ---- codes out of place ---------------------------------------------------

def test_used_code_replayed_is_refused(workers, bus, db):
    workers(CODES)
    cid = make_user(db)
    lid, _ = start_login(bus, cid)
    code, _, _ = send_code(bus, lid)
    eid = str(uuid.uuid4())
    assert submit(bus, lid, code, event_id=eid)["status"] == "verified"
    used_at = db.scalar("SELECT used_at FROM mfa.codes WHERE login_id = %s",
                        lid)
    # the same event again: the runtime answers from the inbox, nothing
    # is verified a second time
    assert submit(bus, lid, code, event_id=eid)["status"] == "verified"
    # the code as a new submission: the challenge is over
    for _ in range(3):
        assert submit(bus, lid, code) == {"login_id": lid,
                                          "status": "expired"}
    assert db.scalar("SELECT used_at FROM mfa.codes WHERE login_id = %s",
                     lid) == used_at
    assert [r["action"] for r in db.rows(
        "SELECT action FROM mfa.audit WHERE login_id = %s", lid)
            ].count("code.verified") == 1
    # nor does it open the user's next login
    lid2, _ = start_login(bus, cid)
    code2, _, _ = send_code(bus, lid2)
    if code2 != code:
        assert submit(bus, lid2, code) == {"login_id": lid2,
                                           "status": "invalid",
                                           "attempts_left": 4}
    assert submit(bus, lid2, code2)["status"] == "verified"


def test_code_of_another_login_is_refused(workers, bus, db):
    workers(CODES)
    cid = make_user(db)
    a, _ = start_login(bus, cid)
    b, _ = start_login(bus, cid)
    c, _ = start_login(bus, make_user(db))
    ca, _, _ = send_code(bus, a)
    cb, _, _ = send_code(bus, b)
    cc, _, _ = send_code(bus, c)
    left = 4
    for other in (ca, cc):          # the same user's and another user's
        if other != cb:
            assert submit(bus, b, other) == {"login_id": b,
                                             "status": "invalid",
                                             "attempts_left": left}
            left -= 1
    assert login_row(db, b)["status"] == "code_sent"
    assert submit(bus, b, cb)["status"] == "verified"
    # each code stays bound to its own login
    assert submit(bus, a, ca)["status"] == "verified"
    assert submit(bus, c, cc)["status"] == "verified"


def test_superseded_codes_are_refused(workers, bus, db):
    workers(CODES, MFA_CODES_RESEND_COOLDOWN_SECONDS=0)
    lid, _ = start_login(bus, make_user(db))
    codes = [send_code(bus, lid)[0] for _ in range(3)]
    live = codes[-1]
    assert db.scalar("SELECT count(*) FROM mfa.codes WHERE login_id = %s "
                     "AND superseded_at IS NOT NULL", lid) == 2
    left = 4
    for old in codes[:-1]:
        if old != live:
            assert submit(bus, lid, old) == {"login_id": lid,
                                             "status": "invalid",
                                             "attempts_left": left}
            left -= 1
    assert submit(bus, lid, live)["status"] == "verified"
    for old in codes[:-1]:
        assert submit(bus, lid, old)["status"] == "expired"
    assert len(results(bus, "login.verified", lid, want=2, timeout=1)) == 1
