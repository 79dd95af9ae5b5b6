"""mfa-sms and `mfactl settings sms` against real RabbitMQ and PostgreSQL,
a scripted fake Twilio and Stoplight Prism serving Twilio's own OpenAPI.

- tests/servers/twilio_fake.py is started here (module fixture, with
  twilio_fake_client.py) on a free port: it records every request (read
  back: the code arrived, the ValidityPeriod, the auth) and answers what a
  test scripts per To number (429, 5xx, 4xx with Twilio codes, 401, slow
  answers); stopping it is the "connection refused" case.
- Prism (tests/package.json, installed by scripts/npm-deps.sh) checks our
  requests against Twilio's OpenAPI description of the 2010 API; its tests
  skip when the npm tools are missing.

Dispatch jobs are published here (rows inserted as admin, the code sealed
as mfa-codes seals it, tests/integration/mfa_crypto.py), so mfa-sms is
tested on its own; the settings row is set through mfactl like an
operator would. The row is system-wide: the one found before the module
is put back afterwards. Every test uses numbers of its own, so the fake's
scripts and records never mix between tests.
"""
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timedelta, timezone

import pika
import pytest

from conftest import (REPO, Db, bin_path, ctl, delivery, dsn_as,
                      end_delivery_elsewhere, envelope, wait_delivery)
from mfa_crypto import seal_code, sodium
from twilio_fake_client import TwilioFake

pytestmark = pytest.mark.skipif(sodium is None, reason="python3-nacl missing")

PRISM = os.path.join(REPO, "tests", "node_modules", ".bin", "prism")
SPEC = os.path.join(REPO, "tests", "node_modules", "@twilio", "cli-core",
                    "src", "services", "twilio-api", "twilio_api_v2010.json")
AC = "AC" + "0123456789abcdef" * 2
AC2 = "AC" + "fedcba9876543210" * 2
SK = "SK" + "00112233445566778899aabbccddeeff"
FROM = "+15005550006"
SECRET = "s3cr3t" + uuid.uuid4().hex  # never in a log or in clear in the db
SMS = "mfa-sms"


# ---- the fake Twilio and Prism ---------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, timeout=90, proc=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError("%s exited early" % url)
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.2)
    raise AssertionError("%s not up" % url)


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    f = TwilioFake(tmp_path_factory.mktemp("twilio-fake"))
    f.start()
    yield f
    f.stop()


@pytest.fixture(scope="module")
def prism(tmp_path_factory):
    if not (os.path.exists(PRISM) and os.path.exists(SPEC)):
        pytest.skip("Prism / the Twilio spec are not installed "
                    "(sh scripts/npm-deps.sh)")
    port = free_port()
    log = open(str(tmp_path_factory.mktemp("prism") / "prism.log"), "ab")
    proc = subprocess.Popen([PRISM, "mock", "-h", "127.0.0.1", "-p",
                             str(port), SPEC], stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    url = "http://127.0.0.1:%d" % port
    try:
        wait_http(url + "/", 120, proc)
        yield url
    finally:
        # our own process group: node and anything it started
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# ---- settings ---------------------------------------------------------------

@pytest.fixture(scope="module", autouse=True)
def keep_sms_settings():
    db = Db()
    saved = db.one("SELECT value::text AS value, secret_sealed, updated_by "
                   "FROM mfa.settings WHERE name = 'sms'")
    yield
    db.execute("DELETE FROM mfa.settings WHERE name = 'sms'")
    if saved:
        db.execute("INSERT INTO mfa.settings (name, value, secret_sealed, "
                   "updated_by) VALUES ('sms', %s::jsonb, %s, %s)",
                   saved["value"], saved["secret_sealed"], saved["updated_by"])


def settings_set(client_id=AC, account_sid=None, secret=SECRET, frm=FROM,
                 env=None, check=True):
    args = ["settings", "sms", "set", "--client-id", client_id, "--from", frm]
    if account_sid:
        args += ["--account-sid", account_sid]
    return ctl(*args, input=secret + "\n", env=env, check=check)


def settings_clear():
    ctl("settings", "sms", "clear", "--yes", check=True)


@pytest.fixture
def sms_settings():
    settings_set()
    yield


# ---- rows and jobs ----------------------------------------------------------

def new_mobile():
    return "+3161%07d" % random.randrange(10 ** 7)


def make_user(db, phone, locale="en", enabled=True, blocked=None):
    cid = "sms-" + uuid.uuid4().hex[:12]
    db.execute("INSERT INTO mfa.users (contact_id, organization_id, "
               "display_name, locale, phone_e164, phone_status, "
               "phone_sms_capable, phone_type, phone_sms_blocked, enabled) "
               "VALUES (%s, 'org-1', 'Jan Jansen', %s, %s, 'valid', true, "
               "'mobile', %s, %s)", cid, locale, phone, blocked, enabled)
    return cid


def make_code(db, cid, ttl=300, superseded=False, used=False,
              status="queued"):
    lid, did = str(uuid.uuid4()), str(uuid.uuid4())
    now = datetime.now(timezone.utc)
    expires = now + timedelta(seconds=ttl)
    db.execute("INSERT INTO mfa.logins (login_id, contact_id, status, "
               "methods, expires_at, max_attempts) VALUES (%s, %s, "
               "'code_sent', ARRAY['sms'], now() + interval '15 minutes', 5)",
               lid, cid)
    db.execute("INSERT INTO mfa.deliveries (delivery_id, login_id, "
               "contact_id, kind, channel, status) "
               "VALUES (%s, %s, %s, 'code', 'sms', %s)", did, lid, cid, status)
    db.execute("INSERT INTO mfa.codes (login_id, delivery_id, channel, "
               "code_hash, key_id, expires_at, used_at, superseded_at) "
               "VALUES (%s, %s, 'sms', %s, 'test', %s, %s, %s)",
               lid, did, b"\0" * 32, expires, now if used else None,
               now if superseded else None)
    return lid, did, expires


def new_code():
    # 8 digits: a random 6-digit run shows up in hex ids now and then
    return "%08d" % random.randrange(10 ** 8)


def dispatch(bus, cid, lid, did, expires, code, sealed=None):
    env = envelope("dispatch.code", {
        "delivery_id": did, "login_id": lid, "contact_id": cid,
        "channel": "sms", "sealed": sealed or seal_code(code, lid, did),
        "expires_at": expires.isoformat().replace("+00:00", "Z")})
    props = pika.BasicProperties(content_type="application/json",
                                 delivery_mode=2, message_id=env["event_id"],
                                 type="dispatch.code")
    bus.ch.basic_publish("mfa.dispatch", "sms", json.dumps(env).encode(),
                         props, mandatory=True)
    return env["event_id"]


def wait_processed(db, event_id, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if db.scalar("SELECT count(*) FROM mfa.inbox WHERE consumer = %s "
                     "AND event_id = %s", SMS, event_id):
            return
        time.sleep(0.1)
    raise AssertionError("event %s not processed" % event_id)


def start_sms(workers, fake_or_url, **env):
    url = fake_or_url if isinstance(fake_or_url, str) else fake_or_url.url
    return workers(SMS, MFA_SMS_TWILIO_API_BASE=url, **env)


def assert_clean(text, *never):
    """No secret, code or full number in logs."""
    assert SECRET not in text
    for s in never:
        assert s not in text, s


def one_user_code(db, locale="en"):
    phone = new_mobile()
    cid = make_user(db, phone, locale=locale)
    lid, did, exp = make_code(db, cid)
    return phone, cid, lid, did, exp


# ---- settings CLI -----------------------------------------------------------

def test_settings_round_trip_secret_sealed_and_audited(db):
    settings_clear()
    r = settings_set()
    assert "secret set" in r.stdout and SECRET not in r.stdout + r.stderr
    row = db.one("SELECT value, secret_sealed, updated_by FROM mfa.settings "
                 "WHERE name = 'sms'")
    # exactly the layout mfa-codes checks
    assert row["value"] == {"client_id": AC, "account_sid": AC, "from": FROM}
    assert row["updated_by"] == "mfactl"
    assert row["secret_sealed"] and SECRET not in row["secret_sealed"]
    assert SECRET not in json.dumps(row["value"])
    # it opens with the settings subkey and "settings:sms", nothing else
    from mfa_crypto import SUBKEY_SETTINGS, subkey
    import base64
    raw = base64.b64decode(row["secret_sealed"])
    assert sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
        raw[24:], b"settings:sms", raw[:24],
        subkey(SUBKEY_SETTINGS)) == SECRET.encode()

    show = ctl("settings", "sms", "show", check=True).stdout
    assert "complete" in show and AC in show and FROM in show
    assert "secret:       set" in show and SECRET not in show
    js = json.loads(ctl("settings", "sms", "show", "--json",
                        check=True).stdout)
    assert js["complete"] is True and js["secret"] == "set"
    assert SECRET not in json.dumps(js)

    audit = db.rows("SELECT action, detail::text AS d FROM mfa.audit "
                    "WHERE actor = 'mfactl' AND action LIKE 'settings.sms.%%' "
                    "ORDER BY id DESC LIMIT 1")
    assert audit[0]["action"] == "settings.sms.set"
    assert SECRET not in audit[0]["d"] and AC in audit[0]["d"]

    # a secret from the environment (no stdin), an API key with its account
    r = ctl("settings", "sms", "set", "--client-id", SK, "--account-sid", AC2,
            "--from", "+31612345678", env={"MFA_SMS_CLIENT_SECRET": SECRET},
            check=True)
    assert db.scalar("SELECT value FROM mfa.settings WHERE name = 'sms'") == {
        "client_id": SK, "account_sid": AC2, "from": "+31612345678"}

    # clear: asks first; "n" keeps, "y" clears; both audited only if done
    r = ctl("settings", "sms", "clear", input="n\n")
    assert r.returncode == 1
    assert db.scalar("SELECT count(*) FROM mfa.settings WHERE name = 'sms'") == 1
    r = ctl("settings", "sms", "clear", input="y\n", check=True)
    assert db.scalar("SELECT count(*) FROM mfa.settings WHERE name = 'sms'") == 0
    assert db.scalar("SELECT action FROM mfa.audit WHERE actor = 'mfactl' "
                     "ORDER BY id DESC LIMIT 1") == "settings.sms.clear"
    assert "not set" in ctl("settings", "sms", "show", check=True).stdout
    everything = db.scalar("SELECT string_agg(detail::text, ' ') FROM "
                           "mfa.audit WHERE actor = 'mfactl'") or ""
    assert SECRET not in everything


@pytest.mark.parametrize("args,secret,why", [
    (["--client-id", "AC123", "--from", FROM], SECRET, "client id"),
    (["--client-id", SK, "--from", FROM], SECRET, "--account-sid"),
    (["--client-id", SK, "--account-sid", SK, "--from", FROM], SECRET,
     "account sid"),
    (["--client-id", AC, "--from", "0612345678"], SECRET, "from"),
    (["--client-id", AC, "--from", "+3161234"], SECRET, "from"),
    (["--client-id", AC, "--from", "+9991234567"], SECRET,
     "from: must be a phone number in E.164 form such as +15005550006 "
     "(invalid country code)"),
    # the right form, but no valid number: mfactl's own libphonenumber
    # check (mfa-sms checks the form only)
    (["--client-id", AC, "--from", "+15551234567"], SECRET,
     "from: must be a valid phone number in E.164 form such as "
     "+15005550006 (invalid number)"),
    (["--client-id", AC, "--from", FROM], "", "empty"),
])
def test_settings_set_is_checked(db, args, secret, why):
    settings_clear()
    r = ctl("settings", "sms", "set", *args, input=secret + "\n")
    assert r.returncode != 0
    assert why in r.stderr
    assert db.scalar("SELECT count(*) FROM mfa.settings WHERE name = 'sms'") == 0


def test_secret_never_from_argv(db):
    r = ctl("settings", "sms", "set", "--client-id", AC, "--from", FROM,
            "--secret", SECRET)
    assert r.returncode == 2
    assert db.scalar("SELECT count(*) FROM mfa.settings WHERE name = 'sms'") == 0


def test_settings_as_operator_role(db, fake):
    op = {"MFA_POSTGRES_CONNINFO": dsn_as("mfa_operator")}
    settings_clear()
    r = ctl("settings", "sms", "set", "--client-id", AC, "--from", FROM,
            input=SECRET + "\n", env=op, admin=False)
    assert r.returncode == 0, r.stderr
    assert "secret:       set" in ctl("settings", "sms", "show", env=op,
                                      admin=False, check=True).stdout
    # test opens the secret: operators may not read it
    r = ctl("settings", "sms", "test", "--to", new_mobile(), env=dict(
        op, MFA_SMS_TWILIO_API_BASE=fake.url), admin=False)
    assert r.returncode == 1 and "secret_sealed" in r.stderr
    r = ctl("settings", "sms", "clear", "--yes", env=op, admin=False)
    assert r.returncode == 0, r.stderr
    assert db.scalar("SELECT count(*) FROM mfa.audit WHERE actor = 'mfactl' "
                     "AND detail->>'db_user' = 'mfa_operator'") >= 2


def test_settings_test_sends_through_the_worker_client(db, fake, sms_settings):
    to = new_mobile()
    r = ctl("settings", "sms", "test", "--to", to,
            env={"MFA_SMS_TWILIO_API_BASE": fake.url}, check=True)
    (req,) = fake.requests(to)
    assert "message sid:  SM" in r.stdout and "HTTP 201" in r.stdout
    assert req["account"] == AC and req["user"] == AC
    assert req["password"] == SECRET
    assert req["form"]["From"] == FROM and "test message" in req["form"]["Body"]
    assert req["form"]["ValidityPeriod"] == "600"
    # a refusal is shown with Twilio's code, and fails
    to = new_mobile()
    fake.script(to, {"status": 400, "code": 21211,
                     "message": "The 'To' number %s is not a valid phone "
                                "number." % to})
    r = ctl("settings", "sms", "test", "--to", to,
            env={"MFA_SMS_TWILIO_API_BASE": fake.url})
    assert r.returncode == 1 and "21211" in r.stdout
    assert to not in r.stdout  # masked


# ---- what mfa-codes offers ---------------------------------------------------

def test_methods_offered_follow_the_settings(workers, bus, db):
    try:
        bin_path("mfa-codes")
    except FileNotFoundError:
        pytest.skip("mfa-codes is not built")
    workers("mfa-codes")
    cid = make_user(db, new_mobile())

    def methods():
        r = bus.call("login.started", {"login_id": str(uuid.uuid4()),
                                       "contact_id": cid})
        return r.get("methods") or []

    settings_clear()
    assert "sms" not in methods()
    settings_set()
    assert "sms" in methods()
    settings_clear()
    assert "sms" not in methods()


# ---- dispatch: the happy path -------------------------------------------------

def test_code_sms_sent_with_validity_and_auth(workers, bus, db, fake,
                                              sms_settings):
    w = start_sms(workers, fake)
    phone, cid, lid, did, exp = one_user_code(db)
    code = new_code()
    dispatch(bus, cid, lid, did, exp, code)
    row = wait_delivery(db, did, "sent")
    (req,) = fake.requests(phone)
    f = req["form"]
    assert f["To"] == phone and f["From"] == FROM
    assert code in f["Body"] and "Customer Portal" in f["Body"]
    assert f["Body"].startswith(code + " is your")
    assert 200 <= int(f["ValidityPeriod"]) <= 300
    assert "StatusCallback" not in f
    assert req["account"] == AC and req["user"] == AC
    assert req["password"] == SECRET
    assert row["attempts"] == 1 and row["provider_message_id"].startswith("SM")
    assert row["last_error"] is None and not row["possible_duplicate"]
    res = bus.results(want=1, match=lambda e: e["data"].get("delivery_id") == did)
    assert res[0]["type"] == "code.sent"
    assert res[0]["data"]["provider_message_id"] == row["provider_message_id"]
    assert res[0]["data"]["channel"] == "sms"
    assert code not in json.dumps(res[0])
    audit = db.one("SELECT detail FROM mfa.audit WHERE actor = 'mfa-sms' "
                   "AND action = 'sms.sent' AND login_id = %s", lid)
    assert phone not in json.dumps(audit["detail"])
    w.wait_log("message_sid")
    assert_clean(w.logs(), code, phone)


def test_locale_webotp_and_status_callback(workers, bus, db, fake,
                                           sms_settings):
    w = start_sms(workers, fake, MFA_SMS_WEBOTP_DOMAIN="portal.example",
                  MFA_SMS_STATUS_CALLBACK="https://portal.example/sms-status")
    phone, cid, lid, did, exp = one_user_code(db, locale="nl-BE")
    code = new_code()
    dispatch(bus, cid, lid, did, exp, code)
    wait_delivery(db, did, "sent")
    (req,) = fake.requests(phone)
    body = req["form"]["Body"]
    assert "verificatiecode" in body
    assert body.splitlines()[-1] == "@portal.example #%s" % code
    assert req["form"]["StatusCallback"] == "https://portal.example/sms-status"
    assert_clean(w.logs(), code, phone)


def test_api_key_with_account_sid(workers, bus, db, fake):
    settings_set(client_id=SK, account_sid=AC2)
    start_sms(workers, fake)
    phone, cid, lid, did, exp = one_user_code(db)
    dispatch(bus, cid, lid, did, exp, new_code())
    wait_delivery(db, did, "sent")
    (req,) = fake.requests(phone)
    assert req["account"] == AC2 and req["user"] == SK


def test_settings_change_applies_without_restart(workers, bus, db, fake):
    settings_set()
    start_sms(workers, fake)
    phone, cid, lid, did, exp = one_user_code(db)
    dispatch(bus, cid, lid, did, exp, new_code())
    wait_delivery(db, did, "sent")
    settings_set(client_id=SK, account_sid=AC2, secret="other-secret")
    phone2, cid2, lid2, did2, exp2 = one_user_code(db)
    dispatch(bus, cid2, lid2, did2, exp2, new_code())
    wait_delivery(db, did2, "sent")
    (req,) = fake.requests(phone2)
    assert req["user"] == SK and req["password"] == "other-secret"


# ---- answers -----------------------------------------------------------------

def test_429_then_sent(workers, bus, db, fake, sms_settings):
    w = start_sms(workers, fake)
    phone, cid, lid, did, exp = one_user_code(db)
    code = new_code()
    fake.script(phone, {"status": 429, "code": 20429,
                        "message": "Too Many Requests", "retry_after": 1})
    dispatch(bus, cid, lid, did, exp, code)
    row = wait_delivery(db, did, "sent")
    reqs = fake.requests(phone)
    assert [r["answered"] for r in reqs] == [429, 201]
    assert all(code in r["form"]["Body"] for r in reqs)
    assert row["attempts"] == 2 and row["last_error"].startswith("20429")
    assert not row["possible_duplicate"]
    lines = [l for l in w.log_lines() if l.get("retry_after") == "1"]
    assert lines, "Retry-After not logged"


def test_connection_refused_then_sent(workers, bus, db, fake, sms_settings):
    start_sms(workers, fake, MFA_RETRY_DELAYS_SECONDS="2,2,2")
    phone, cid, lid, did, exp = one_user_code(db)
    fake.stop()
    try:
        dispatch(bus, cid, lid, did, exp, new_code())
        deadline = time.time() + 20
        while (delivery(db, did)["attempts"] or 0) < 1:
            assert time.time() < deadline, delivery(db, did)
            time.sleep(0.1)
        row = delivery(db, did)
        assert row["status"] == "queued" and not row["possible_duplicate"]
        assert "onnect" in row["last_error"]
    finally:
        fake.start()            # on the same port
    row = wait_delivery(db, did, "sent")
    assert row["attempts"] >= 2 and not row["possible_duplicate"]
    assert len(fake.requests(phone)) == 1


def test_5xx_retried_once_then_failed_as_possible_duplicate(workers, bus, db,
                                                            fake, sms_settings):
    w = start_sms(workers, fake)
    phone, cid, lid, did, exp = one_user_code(db)
    code = new_code()
    fake.script(phone, {"status": 500, "code": 20500, "message": "Internal"},
                {"status": 503, "code": 20503, "message": "Unavailable"},
                {"status": 201})
    dispatch(bus, cid, lid, did, exp, code)
    row = wait_delivery(db, did, "failed")
    reqs = fake.requests(phone)
    assert len(reqs) == 2  # one retry, never a third
    assert reqs[0]["form"]["Body"] == reqs[1]["form"]["Body"]  # same code
    assert row["attempts"] == 2 and row["possible_duplicate"]
    assert row["last_error"].startswith("20503 Unavailable")
    assert "possible duplicate" in w.logs()
    res = bus.results(want=1, match=lambda e: e["data"].get("delivery_id") == did)
    assert res[0]["type"] == "code.failed"


def test_timeout_after_sending_then_sent_flagged(workers, bus, db, fake,
                                                 sms_settings):
    start_sms(workers, fake, MFA_SMS_TIMEOUT_SECONDS="1")
    phone, cid, lid, did, exp = one_user_code(db)
    fake.script(phone, {"status": 201, "delay_ms": 2500})
    dispatch(bus, cid, lid, did, exp, new_code())
    row = wait_delivery(db, did, "sent")
    reqs = fake.requests(phone)
    assert len(reqs) == 2 and reqs[0]["form"]["Body"] == reqs[1]["form"]["Body"]
    assert row["possible_duplicate"] and row["attempts"] == 2
    assert "after sending" in row["last_error"]


@pytest.mark.parametrize("code,blocked", [
    (21211, None), (21610, "21610 unsubscribed"),
    (21614, "21614 not a mobile number")])
def test_4xx_fails_without_retry(workers, bus, db, fake, sms_settings, code,
                                 blocked):
    w = start_sms(workers, fake)
    phone, cid, lid, did, exp = one_user_code(db)
    fake.script(phone, {"status": 400, "code": code,
                        "message": "Number %s refused" % phone})
    dispatch(bus, cid, lid, did, exp, new_code())
    row = wait_delivery(db, did, "failed")
    assert row["last_error"].startswith("%d Number +31 6" % code)
    assert phone not in row["last_error"]
    assert row["attempts"] == 1 and len(fake.requests(phone)) == 1
    res = bus.results(want=1, match=lambda e: e["data"].get("delivery_id") == did)
    assert res[0]["type"] == "code.failed"
    assert res[0]["data"]["error"].startswith(str(code))
    assert db.scalar("SELECT phone_sms_blocked FROM mfa.users "
                     "WHERE contact_id = %s", cid) == blocked
    assert_clean(w.logs(), phone)
    if blocked:
        # the next code for that number is not sent at all
        lid2, did2, exp2 = make_code(db, cid)
        dispatch(bus, cid, lid2, did2, exp2, new_code())
        row = wait_delivery(db, did2, "dropped")
        assert blocked in row["last_error"]
        assert len(fake.requests(phone)) == 1


def test_401_fails_and_says_settings_are_wrong(workers, bus, db, fake,
                                               sms_settings):
    w = start_sms(workers, fake)
    phone, cid, lid, did, exp = one_user_code(db)
    fake.script(phone, {"status": 401, "code": 20003,
                        "message": "Authenticate"})
    dispatch(bus, cid, lid, did, exp, new_code())
    row = wait_delivery(db, did, "failed")
    assert row["last_error"].startswith("20003 Authenticate")
    assert len(fake.requests(phone)) == 1
    errors = [l for l in w.log_lines() if l.get("level") == "error"]
    assert any("SMS settings" in l.get("msg", "") for l in errors), errors
    assert_clean(w.logs(), phone)


def test_worker_checks_the_from_form_only(workers, bus, db, fake):
    """mfa-sms checks the stored From number's E.164 form without
    libphonenumber; its validity is mfactl's check before storing."""
    settings_set()
    start_sms(workers, fake)
    # a row mfactl would refuse (+1 555 is no area code): the form is right
    db.execute("UPDATE mfa.settings SET value = jsonb_set(value, '{from}', "
               "'\"+15551234567\"') WHERE name = 'sms'")
    phone, cid, lid, did, exp = one_user_code(db)
    dispatch(bus, cid, lid, did, exp, new_code())
    wait_delivery(db, did, "sent")
    (req,) = fake.requests(phone)
    assert req["form"]["From"] == "+15551234567"
    # a calling code no country has: refused before any request
    db.execute("UPDATE mfa.settings SET value = jsonb_set(value, '{from}', "
               "'\"+9991234567\"') WHERE name = 'sms'")
    phone, cid, lid, did, exp = one_user_code(db)
    dispatch(bus, cid, lid, did, exp, new_code())
    row = wait_delivery(db, did, "failed")
    assert row["last_error"] == (
        "sms settings invalid: from: must be a phone number in E.164 form "
        "such as +15005550006 (invalid country code)")
    assert fake.requests(phone) == []


def test_settings_missing_fails_without_request(workers, bus, db, fake):
    settings_clear()
    start_sms(workers, fake)
    phone, cid, lid, did, exp = one_user_code(db)
    dispatch(bus, cid, lid, did, exp, new_code())
    row = wait_delivery(db, did, "failed")
    assert row["last_error"] == "sms settings incomplete"
    assert row["attempts"] == 0 and fake.requests(phone) == []


# ---- stale jobs, bad jobs -----------------------------------------------------

@pytest.mark.parametrize("kind,reason", [
    ("superseded", "superseded"), ("used", "used"), ("expired", "expired"),
    ("expiring", "expiring"), ("disabled", "no valid phone number"),
    ("blocked", "sms blocked")])
def test_stale_jobs_dropped_not_sent(workers, bus, db, fake, sms_settings,
                                     kind, reason):
    start_sms(workers, fake)
    phone = new_mobile()
    cid = make_user(db, phone, enabled=kind != "disabled",
                    blocked="21610 unsubscribed" if kind == "blocked" else None)
    ttl = {"expired": -5, "expiring": 30}.get(kind, 300)
    lid, did, exp = make_code(db, cid, ttl=ttl,
                              superseded=kind == "superseded",
                              used=kind == "used")
    dispatch(bus, cid, lid, did, exp, new_code())
    row = wait_delivery(db, did, "dropped")
    assert reason in row["last_error"]
    assert fake.requests(phone) == []


def test_final_delivery_not_sent_again(workers, bus, db, fake, sms_settings):
    start_sms(workers, fake)
    phone = new_mobile()
    cid = make_user(db, phone)
    lid, did, exp = make_code(db, cid, status="sent")
    eid = dispatch(bus, cid, lid, did, exp, new_code())
    wait_processed(db, eid)
    assert delivery(db, did)["status"] == "sent"
    assert fake.requests(phone) == []


def test_tampered_seal_failed_and_dead_lettered(workers, bus, db, fake,
                                                sms_settings):
    start_sms(workers, fake)
    phone, cid, lid, did, exp = one_user_code(db)
    other = seal_code("123456", lid, str(uuid.uuid4()))  # another delivery's
    eid = dispatch(bus, cid, lid, did, exp, None, sealed=other)
    row = wait_delivery(db, did, "failed")
    assert row["last_error"] == "sealed code does not open"
    dead = bus.dead(lambda m: m["props"].message_id == eid)
    assert dead and "sealed code" in dead[0]["headers"]["x-mfa-error"]
    assert fake.requests(phone) == []


# ---- many in flight ------------------------------------------------------------

def test_twenty_slow_requests_overlap(workers, bus, db, fake, sms_settings):
    start_sms(workers, fake)
    jobs = []
    for _ in range(20):
        phone, cid, lid, did, exp = one_user_code(db)
        fake.script(phone, {"status": 201, "delay_ms": 500})
        jobs.append((phone, cid, lid, did, exp))
    for phone, cid, lid, did, exp in jobs:
        dispatch(bus, cid, lid, did, exp, new_code())
    for job in jobs:
        wait_delivery(db, job[3], "sent")
    reqs = [r for j in jobs for r in fake.requests(j[0])]
    assert len(reqs) == 20
    # the most requests open at one moment, from the fake's own clock
    events = sorted([(r["t_in"], 1) for r in reqs] +
                    [(r["t_out"], -1) for r in reqs])
    cur = peak = 0
    for _, d in events:
        cur += d
        peak = max(peak, cur)
    assert peak >= 10, peak


def test_connections_are_reused(workers, bus, db, fake, sms_settings):
    start_sms(workers, fake)
    peers = []
    for _ in range(3):  # one after the other: one connection suffices
        phone, cid, lid, did, exp = one_user_code(db)
        dispatch(bus, cid, lid, did, exp, new_code())
        wait_delivery(db, did, "sent")
        peers += [r["peer"] for r in fake.requests(phone)]
    assert len(peers) == 3 and len(set(peers)) == 1, peers


@pytest.fixture(scope="module")
def tls_fake(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.skip("openssl command missing")
    d = tmp_path_factory.mktemp("twilio-tls")
    key, crt = str(d / "key.pem"), str(d / "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-keyout", key, "-out", crt, "-days", "2",
                    "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost"],
                   check=True, capture_output=True)
    f = TwilioFake(d, tls=(key, crt))
    f.start()
    yield f
    f.stop()


def test_tls_is_verified(workers, bus, db, tls_fake, sms_settings):
    delays = {"MFA_RETRY_DELAYS_SECONDS": "2,2,2,2"}
    w = start_sms(workers, tls_fake, **delays)
    phone, cid, lid, did, exp = one_user_code(db)
    dispatch(bus, cid, lid, did, exp, new_code())
    deadline = time.time() + 20
    while (delivery(db, did)["attempts"] or 0) < 1:
        assert time.time() < deadline, delivery(db, did)
        time.sleep(0.1)
    row = delivery(db, did)
    # refused before anything was sent: safe to retry, not a duplicate
    assert row["status"] == "queued" and not row["possible_duplicate"]
    assert "certificate" in row["last_error"].lower()
    assert tls_fake.requests(phone) == []
    w.stop()
    # with the CA configured the retried job goes through
    start_sms(workers, tls_fake, MFA_SMS_CA_FILE=tls_fake.tls[1], **delays)
    wait_delivery(db, did, "sent")
    assert len(tls_fake.requests(phone)) == 1


# ---- start-up --------------------------------------------------------------------

def test_template_that_needs_two_segments_stops_startup(workers, fake,
                                                        tmp_path):
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "sms.txt").write_text(
        "{{code}} " + "is your verification code, valid for a while. " * 4)
    w = start_sms(workers, fake, wait=False, MFA_TEMPLATES_DIR=str(tmp_path))
    assert w.proc.wait(20) != 0
    msgs = [l.get("msg", "") for l in w.log_lines()]
    assert any("en/sms.txt" in m and "2 SMS segments" in m for m in msgs), msgs


# ---- contract: Twilio's OpenAPI through Prism ------------------------------------

def post_form(url, fields, auth=True):
    import base64
    from urllib.parse import urlencode
    req = urllib.request.Request(url, urlencode(fields).encode())
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(
            ("%s:%s" % (AC, SECRET)).encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def test_prism_is_strict(prism):
    url = "%s/2010-04-01/Accounts/%s/Messages.json" % (prism, AC)
    ok = {"To": "+31612345678", "From": FROM, "Body": "hi",
          "ValidityPeriod": "300"}
    assert post_form(url, ok) == 201
    assert post_form(url, ok, auth=False) == 401
    assert post_form(url, {"From": FROM, "Body": "hi"}) == 422  # no To
    assert post_form(url, dict(ok, ValidityPeriod="soon")) == 422
    bad = "%s/2010-04-01/Accounts/%s/Messages.json" % (prism, SK)
    assert post_form(bad, ok) == 422  # an API key is not an account


def test_prism_accepts_our_requests(workers, bus, db, prism):
    settings_set(client_id=SK, account_sid=AC2)
    w = start_sms(workers, prism, MFA_SMS_WEBOTP_DOMAIN="portal.example",
                  MFA_SMS_STATUS_CALLBACK="https://portal.example/s")
    phone, cid, lid, did, exp = one_user_code(db)
    dispatch(bus, cid, lid, did, exp, new_code())
    row = wait_delivery(db, did, "sent")
    assert row["provider_message_id"] == "SM" + "a" * 32  # Prism's example
    assert row["attempts"] == 1
    settings_set()
    r = ctl("settings", "sms", "test", "--to", new_mobile(),
            env={"MFA_SMS_TWILIO_API_BASE": prism}, check=True)
    assert "HTTP 201" in r.stdout and "SM" + "a" * 32 in r.stdout
    assert_clean(w.logs(), phone)


def test_delivery_final_meanwhile_gets_nothing_more(workers, bus, db, fake,
                                                    sms_settings):
    """The delivery ends elsewhere while Twilio holds the request: the
    completion's write finds it no longer queued and records nothing (no
    'sent', no attempt, no audit row)."""
    w = start_sms(workers, fake)
    phone, cid, lid, did, exp = one_user_code(db)
    fake.script(phone, {"status": 201, "delay_ms": 2000})
    dispatch(bus, cid, lid, did, exp, new_code())
    deadline = time.time() + 10
    while time.time() < deadline and not fake.requests(phone):
        time.sleep(0.05)
    assert len(fake.requests(phone)) == 1   # recorded before the delay
    end_delivery_elsewhere(db, did)
    w.wait_log("delivery final meanwhile; outcome not recorded")
    row = delivery(db, did)
    assert row["status"] == "dropped" and row["attempts"] == 0
    assert row["provider_message_id"] is None
    assert db.rows("SELECT action FROM mfa.audit WHERE login_id = %s "
                   "AND action LIKE 'sms.%%'", lid) == []
