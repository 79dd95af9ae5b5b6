"""Nothing secret was left behind: the session's last test (the name sorts
last, so pytest runs it after every other suite).

It searches what the suites left, after they ran:
- every worker log the fixtures wrote (conftest.LOG_PATHS);
- a pg_dump of the database, taken as the admin, with the mfa.users rows
  dumped without their own email, phone_e164 and phone_input columns
  (those hold the contact data legitimately; nothing else may);
- every message in every queue (mfa.dead and the retry tiers too), read
  with basic_get and put back, body and headers;
for
- every clear code the tests saw: opened from or sealed into a dispatch
  job (conftest.record_code, called by mfa_crypto) or read from a mail in
  the SMTP catcher's spool (the spool itself is where codes belong);
- the master key (base64 and hex) and its subkeys, the SMS client secret
  and the SMTP password the suites used;
- every full phone number of mfa.users (international and national form,
  with or without separators), outside mfa.users.

A code is a run of digits standing alone (no letter or digit touching it),
so a code inside a UUID or a hash is not one; the fraction of a timestamp
(hh:mm:ss.123456) is not either.
"""
import base64
import email
import email.policy
import os
import re
import subprocess
import sys

import pika
import pytest

import conftest
from conftest import ADMIN_DSN, AMQP_URL, MASTER_KEY, SERVERS, TEST_DIR, Db
from mfa_crypto import subkey, sodium

SPOOL = os.environ.get("MFA_TEST_SMTP_SPOOL", "")
PG_BIN = "/usr/lib/postgresql/15/bin"
# mfa.users' own contact columns: the address, the number and the number
# as the CRM sent it (006_contacts.sql); phone_reason and the rest must
# not echo them.
USERS_CONTACT = ("email", "phone_e164", "phone_input")
# Rows a suite writes itself, as the admin, to see that a reader masks
# them: taken out of the dump word for word before the search (anything
# else around them is still searched).
PLANTED = [
    # test_ctl.py::test_user_show_masks_and_explains_the_methods
    b"550 5.1.1 <jane.doe@example.com>: unknown; +31612345678",
]

TOKEN = re.compile(rb"(?<![0-9A-Za-z])\d{6,10}(?![0-9A-Za-z])")
TIME_FRACTION = re.compile(rb"\d\d:\d\d:\d\d\.$")
DIGIT_RUN = re.compile(rb"\d(?:[ \-./()]{0,2}\d)+")
# ITU country calling codes of one and two digits; all others have three.
CC_SHORT = {"1", "7"} | {str(n) for n in (
    20, 27, 30, 31, 32, 33, 34, 36, 39, 40, 41, 43, 44, 45, 46, 47, 48,
    49, 51, 52, 53, 54, 55, 56, 57, 58, 60, 61, 62, 63, 64, 65, 66, 81,
    82, 84, 86, 90, 91, 92, 93, 94, 95, 98)}


# ---- what must not be found -----------------------------------------------

def spool_codes():
    """Codes in the mails the catcher stored (the code line of the text
    part: the digits alone on their line)."""
    out = set()
    if not SPOOL or not os.path.isdir(SPOOL):
        return out
    for name in os.listdir(SPOOL):
        if not name.endswith(".eml") or name.startswith("."):
            continue  # (".tmp-*": the catcher is still writing it)
        with open(os.path.join(SPOOL, name), "rb") as f:
            msg = email.message_from_bytes(f.read(),
                                           policy=email.policy.default)
        try:
            part = msg.get_body(preferencelist=("plain",))
            text = part.get_content() if part else ""
        except (KeyError, LookupError, ValueError):
            continue
        for m in re.finditer(r"(?m)^\s+(\d{6,10})\s*$", text):
            out.add(m.group(1))
    return out


def suite_values(*names):
    """Module-level constants of the suites that ran (test_sms.SECRET,
    test_email_tls.PASSWORD, ...)."""
    out = set()
    for mod_name, mod in list(sys.modules.items()):
        if not mod_name.startswith("test_") or mod is None:
            continue
        for n in names:
            v = getattr(mod, n, None)
            if isinstance(v, str):
                out.add(v)
            elif isinstance(v, dict) and isinstance(v.get("from"), str):
                out.add(v["from"])
    return out


def suite_secrets():
    """name -> bytes, for every secret the suites used."""
    master = base64.b64decode(MASTER_KEY)
    out = {"master key (base64)": MASTER_KEY.encode(),
           "master key (base64url)":
               base64.urlsafe_b64encode(master).rstrip(b"="),
           "master key (hex)": master.hex().encode()}
    for i in range(1, 5):
        k = subkey(i)
        out["subkey %d (hex)" % i] = k.hex().encode()
        out["subkey %d (base64)" % i] = base64.b64encode(k)
    for v in suite_values("SECRET", "PASSWORD"):
        if len(v) >= 8:
            out["suite secret %s..." % v[:3]] = v.encode()
    for k, v in os.environ.items():
        if k in ("MFA_SMTP_PASSWORD", "MFA_SMS_CLIENT_SECRET") and v:
            out[k] = v.encode()
    return out


def phone_forms():
    """digits -> the E.164 number, for the international form of every
    mfa.users number and its national form (trunk prefix 0)."""
    numbers = {r["phone_e164"] for r in Db().rows(
        "SELECT phone_e164 FROM mfa.users WHERE phone_e164 IS NOT NULL")}
    # the sender's number of the SMS settings is no one's contact data
    numbers -= suite_values("FROM", "SMS_COMPLETE")
    out = {}
    for e164 in numbers:
        d = e164[1:]
        out[d] = e164
        cc = d[:1] if d[:1] in CC_SHORT else (
            d[:2] if d[:2] in CC_SHORT else d[:3])
        if d[:1] != "1":                  # NANP numbers have no trunk 0
            out["0" + d[len(cc):]] = e164
    return out


# ---- where it must not be found -------------------------------------------

def worker_logs():
    for path in conftest.LOG_PATHS:
        if os.path.exists(path):
            with open(path, "rb") as f:
                yield "log " + os.path.basename(path), f.read()


def database_dump():
    """pg_dump without mfa.users' rows, then those rows without their
    contact columns."""
    r = subprocess.run([os.path.join(PG_BIN, "pg_dump"), "--no-owner",
                        "--exclude-table-data=mfa.users", "-d", ADMIN_DSN],
                       capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    dump = r.stdout
    cols = [c["column_name"] for c in Db().rows(
        "SELECT column_name FROM information_schema.columns WHERE "
        "table_schema = 'mfa' AND table_name = 'users' ORDER BY "
        "ordinal_position") if c["column_name"] not in USERS_CONTACT]
    r = subprocess.run([os.path.join(PG_BIN, "psql"), "-X", "-q", "-d",
                        ADMIN_DSN, "-c",
                        "COPY (SELECT %s FROM mfa.users) TO STDOUT" %
                        ", ".join('"%s"' % c for c in cols)],
                       capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    assert b"mfa.codes" in dump and b"mfa.audit" in dump
    for p in PLANTED:
        dump = dump.replace(p, b"<planted by a test>")
    return [("pg_dump", dump), ("mfa.users without contact columns",
                                r.stdout)]


def queue_names():
    r = subprocess.run(["sh", SERVERS, "rabbitmqctl", TEST_DIR, "list_queues",
                        "-q", "--no-table-headers", "name"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    names = [n.strip() for n in r.stdout.splitlines() if n.strip()]
    assert "mfa.dead" in names and "mfa.login" in names, names
    return names


def queue_contents():
    """(queue, one blob per message) for every queue, messages put back."""
    conn = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    out = []
    try:
        for q in queue_names():
            ch = conn.channel()
            blobs = []
            try:
                while True:
                    m, props, body = ch.basic_get(q, auto_ack=False)
                    if m is None:
                        break
                    blobs.append(b"%r\n%s" % (props.headers, body))
            except pika.exceptions.ChannelClosedByBroker as e:
                # an exclusive queue of a connection still open
                if e.reply_code != 405:
                    raise
            finally:
                if ch.is_open:
                    ch.close()      # unacked: everything goes back
            out.append((q, blobs))
    finally:
        conn.close()
    return out


# ---- the search -----------------------------------------------------------

def context(data, start, end):
    return data[max(0, start - 60):end + 60].decode(errors="replace")


def find_codes(where, data, codes, found):
    for m in TOKEN.finditer(data):
        tok = m.group(0).decode()
        if tok not in codes:
            continue
        if TIME_FRACTION.search(data, max(0, m.start() - 9), m.start()):
            continue
        found.append("%s: code %s: ...%s..." % (
            where, tok, context(data, m.start(), m.end())))


def find_secrets(where, data, named, found):
    for name, s in named.items():
        i = data.find(s)
        if i >= 0:
            found.append("%s: %s: ...%s..." % (
                where, name, context(data, i, i + len(s))))


def find_phones(where, data, forms, found, lengths):
    for m in DIGIT_RUN.finditer(data):
        run = re.sub(rb"\D", b"", m.group(0)).decode()
        if len(run) < lengths[0]:
            continue
        for n in lengths:
            for i in range(0, len(run) - n + 1):
                e164 = forms.get(run[i:i + n])
                if e164:
                    found.append("%s: phone %s: ...%s..." % (
                        where, e164[:6] + "...",
                        context(data, m.start(), m.end())))
                    return


def search(haystacks, codes, named, forms):
    found = []
    lengths = sorted({len(k) for k in forms}) or [99]
    for where, data in haystacks:
        find_codes(where, data, codes, found)
        find_secrets(where, data, named, found)
        find_phones(where, data, forms, found, lengths)
    return found


@pytest.mark.skipif(sodium is None, reason="python3-nacl missing")
def test_no_code_secret_or_number_left_anywhere():
    if not conftest.LOG_PATHS:
        pytest.skip("no suite ran before this test: nothing to search")
    codes = set(conftest.ISSUED_CODES) | spool_codes()
    named = suite_secrets()
    forms = phone_forms()
    if not codes and not forms:
        pytest.skip("no code or number was used in this session")

    haystacks = list(worker_logs())
    assert haystacks
    haystacks += database_dump()
    for q, blobs in queue_contents():
        haystacks += [("queue %s #%d" % (q, i), b)
                      for i, b in enumerate(blobs)]
    found = search(haystacks, codes, named, forms)
    assert not found, "%d leak(s):\n%s" % (len(found), "\n".join(found[:40]))
