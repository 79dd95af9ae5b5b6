#!/usr/bin/python3
"""make check-memory: every worker over many events, for leaks and growth.

For each worker (mfa-contact-sync, mfa-codes, mfa-email, mfa-sms when
built) two runs against private servers (tests/servers.sh, started and
stopped here; mfa-sms talks to tests/servers/twilio_fake.py):

1. RSS: the worker, as built, over MFA_MEM_EVENTS events (10,000).
   VmRSS is read from /proc/PID/status every 0.1 s together with how many
   events are done. After a warm-up (the first 10 % of the events) the
   samples are cut in quarters: the last quarter's peak must stay within
   MFA_MEM_RSS_SLACK_KB (default 512) plus 2 % of the first quarter's
   peak (about 0.9 MiB for a 19 MiB worker): 150 bytes lost per event
   already come to 1.1 MiB over the 7,500 events measured.
2. memcheck: the same worker under valgrind (--leak-check=full) over
   MFA_MEM_VG_EVENTS events (default 10,000, like the RSS run: some 60 to
   100 s per worker on an idle two-core host, three times that when other
   suites load it; 3,000 is enough for a quick look), stopped with SIGTERM
   like in production. Any error (invalid read or write, use of an
   uninitialised value, bad or mismatched free, overlapping copy) or any
   definitely/indirectly lost byte fails.
   tests/memory/valgrind.supp only hides libphonenumber's "possibly lost"
   singleton; possibly lost bytes are reported, not failed.

The events are what the workers meet in production, in bulk:
- mfa-contact-sync: contact.promoted (valid, national, invalid numbers),
  contact.changed (phone, email, name), user.email_confirmed and
  contact.demoted, through `mfa-publish TYPE --lines`;
- mfa-codes: login.started, login.code_requested (email and SMS), then
  login.code_submitted (the right code for half the logins, wrong or
  malformed ones for the rest), through `mfa-publish --lines`; the codes
  are opened from the dispatch jobs as the dispatch workers would;
- mfa-email and mfa-sms: dispatch.code jobs, their rows inserted as the
  admin and the codes sealed here the way mfa-codes seals them (like the
  integration tests do: the dispatch jobs are internal, not events
  mfa-publish takes); every one must end `sent`.

All of it takes about 10 minutes on an idle two-core host (some 13 when
other test suites load it: the workers wait on the broker's and the
database's disk, not on valgrind's CPU).

Usage: /usr/bin/python3 tests/memory/check_memory.py [--build DIR]
       [--workers contact-sync,codes,email,sms] [--keep]
Environment: MFA_MEM_EVENTS, MFA_MEM_VG_EVENTS (0 skips memcheck),
MFA_MEM_RSS_SLACK_KB. Logs, valgrind reports and the RSS samples go to
BUILD/memory/. Exit 0 when every check holds. Debian's python3 with
python3-pika, python3-psycopg2, python3-nacl; valgrind.
"""
import argparse
import base64
import hashlib
import json
import os
import random
import re
import signal
import struct
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone

import pika
import psycopg2
import psycopg2.extras

try:
    import nacl.bindings as sodium
except ImportError:
    sys.exit("check-memory: python3-nacl missing (sh scripts/deps.sh)")

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
SERVERS = os.path.join(REPO, "tests", "servers.sh")
FAKE = os.path.join(REPO, "tests", "servers", "twilio_fake.py")
SUPP = os.path.join(REPO, "tests", "memory", "valgrind.supp")
PY = "/usr/bin/python3"
ALL_WORKERS = ("contact-sync", "codes", "email", "sms")
AC = "AC" + "0123456789abcdef" * 2
FROM = "+15005550006"
WARMUP = 0.10
STALL_S = 90          # no progress for this long: the run failed


def log(msg):
    print("check-memory: " + msg, flush=True)


def now_z(offset_s=0):
    t = datetime.now(timezone.utc) + timedelta(seconds=offset_s)
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# ---- the code seal (as tests/integration/mfa_crypto.py) ---------------------

def subkey(master, subkey_id):
    """crypto_kdf_derive_from_key(32, id, "mfa-keys", master)."""
    return hashlib.blake2b(digest_size=32, key=master,
                           salt=struct.pack("<Q", subkey_id) + b"\0" * 8,
                           person=b"mfa-keys" + b"\0" * 8).digest()


def seal(master, code, login_id, delivery_id):
    nonce = os.urandom(24)
    ct = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(
        code.encode(), ("%s:%s" % (login_id, delivery_id)).encode(), nonce,
        subkey(master, 2))
    return base64.b64encode(nonce + ct).decode()


def unseal(master, sealed, login_id, delivery_id):
    raw = base64.b64decode(sealed)
    return sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
        raw[24:], ("%s:%s" % (login_id, delivery_id)).encode(), raw[:24],
        subkey(master, 2)).decode()


# ---- servers and workers ----------------------------------------------------

def read_env(path):
    out = {}
    with open(path) as f:
        for line in f:
            m = re.match(r'export ([A-Z0-9_]+)=(.*)$', line.strip())
            if m:
                out[m.group(1)] = m.group(2).strip('"')
    return out


class Worker:
    """One worker process, as built or under valgrind, with its log."""

    def __init__(self, ctx, name, valgrind, env):
        self.name = "mfa-" + name
        self.tag = "%s-%s" % (self.name, "vg" if valgrind else "rss")
        self.log_path = os.path.join(ctx.out, self.tag + ".log")
        self.vg_path = os.path.join(ctx.out, self.tag + ".valgrind")
        cmd = [os.path.join(ctx.build, "bin", self.name)]
        if valgrind:
            cmd = ["valgrind", "--tool=memcheck", "--leak-check=full",
                   "--show-leak-kinds=definite,indirect,possible",
                   "--errors-for-leak-kinds=definite,indirect",
                   "--track-fds=no", "--num-callers=30",
                   "--suppressions=" + SUPP, "--error-exitcode=99",
                   "--log-file=" + self.vg_path] + cmd
        self.logf = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=env,
                                     stdout=self.logf,
                                     stderr=subprocess.STDOUT)
        self.wait_log("broker connected", 120 if valgrind else 30)

    def logs(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def wait_log(self, text, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if text in self.logs():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError("%s did not log %r:\n%s" % (
            self.name, text, self.logs()[-2000:]))

    def rss_kb(self):
        try:
            with open("/proc/%d/status" % self.proc.pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError:
            pass
        return None

    def stop(self, timeout=180):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.logf.close()
        return self.proc.returncode


class Context:
    def __init__(self, args):
        self.build = os.path.abspath(args.build)
        self.out = os.path.join(self.build, "memory")
        os.makedirs(self.out, exist_ok=True)
        self.dir = os.path.join(REPO, "var", "memory-%d" % os.getpid())
        self.master = os.urandom(32)
        self.fake = None
        self.fake_url = None
        self.env = {}
        self.conn = None       # for progress queries

    # servers
    def start(self):
        r = subprocess.run(["sh", SERVERS, "start", self.dir],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           text=True, timeout=300)
        if r.returncode != 0:
            raise RuntimeError("servers did not start:\n" + r.stderr[-2000:])
        self.env = read_env(os.path.join(self.dir, "env"))
        self.admin_dsn = self.env["MFA_POSTGRES_CONNINFO"]
        # The servers fsync every commit (crash tests need it); here the
        # disk is not what is measured, so the workers' sessions do not
        # wait for it (a per-session setting any role may change).
        self.worker_dsn = re.sub(r"user=\S+", "user=mfa_worker",
                                 self.admin_dsn) + \
            " options='-c synchronous_commit=off'"
        self.ctl("migrate")

    def stop(self, keep):
        if self.conn is not None:
            self.conn.close()
        if self.fake:
            self.fake.terminate()
            self.fake.wait(10)
        subprocess.run(["sh", SERVERS, "stop", self.dir] +
                       ([] if keep else ["--clean"]),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=300)

    def base_env(self, **extra):
        env = dict(os.environ)
        env.update(self.env)
        env.update({
            "MFA_KEYS_MASTER_KEY": base64.b64encode(self.master).decode(),
            "MFA_POSTGRES_CONNINFO": self.worker_dsn,
            "MFA_LOG_LEVEL": "info",
            "MFA_SMTP_STARTTLS": "off",
            "MFA_RETRY_DELAYS_SECONDS": "1,2",
        })
        env.update({k: str(v) for k, v in extra.items()})
        return env

    def ctl(self, *args, stdin=None):
        env = self.base_env(MFA_POSTGRES_CONNINFO=self.admin_dsn)
        r = subprocess.run([os.path.join(self.build, "bin", "mfactl"),
                            *args], cwd=REPO, env=env, input=stdin,
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError("mfactl %s: %s%s" % (args, r.stdout,
                                                    r.stderr))

    def publish_lines(self, etype, rows):
        data = "".join(json.dumps(r) + "\n" for r in rows)
        r = subprocess.run([os.path.join(self.build, "bin", "mfa-publish"),
                            etype, "--lines"], cwd=REPO,
                           env=self.base_env(), input=data,
                           capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            raise RuntimeError("mfa-publish %s --lines: %s%s" % (
                etype, r.stdout, r.stderr))

    def db(self):
        c = psycopg2.connect(self.admin_dsn)
        c.autocommit = True
        return c

    def scalar(self, sql, *params):
        if self.conn is None:
            self.conn = self.db()
        with self.conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchone()[0]

    def amqp(self):
        return pika.BlockingConnection(
            pika.URLParameters(self.env["MFA_AMQP_URL"]))

    def purge(self, *queues):
        conn = self.amqp()
        ch = conn.channel()
        for q in queues:
            ch.queue_purge(q)
        conn.close()

    def start_fake(self):
        port_file = os.path.join(self.dir, "twilio-fake.port")
        self.fake = subprocess.Popen(
            [PY, FAKE, "--port", "0", "--port-file", port_file],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 30
        while not os.path.exists(port_file):
            if time.time() > deadline or self.fake.poll() is not None:
                raise RuntimeError("twilio_fake.py did not start")
            time.sleep(0.1)
        with open(port_file) as f:
            self.fake_url = "http://127.0.0.1:%s" % f.read().strip()


# ---- one measured run -------------------------------------------------------

class Run:
    """A worker over n events: feeds them (feed(run) may wait on
    run.until()), samples RSS and progress, stops the worker."""

    def __init__(self, ctx, name, valgrind, n, env, progress):
        self.ctx = ctx
        self.n = n
        self.valgrind = valgrind
        self.progress = progress
        self.base = progress()
        self.samples = []      # (seconds, rss_kb, events done)
        self.t0 = time.time()
        self.w = Worker(ctx, name, valgrind, ctx.base_env(**env))

    def done(self):
        return self.progress() - self.base

    def sample(self):
        rss = self.w.rss_kb()
        d = self.done()
        if rss is not None:
            self.samples.append((time.time() - self.t0, rss, d))
        return d

    def until(self, count):
        """Samples until count events are done (or the worker stalls)."""
        last, last_t = -1, time.time()
        while True:
            d = self.sample()
            if d >= count:
                return
            if d != last:
                last, last_t = d, time.time()
            if self.w.proc.poll() is not None:
                raise RuntimeError("%s exited (%s) after %d events:\n%s" % (
                    self.w.name, self.w.proc.returncode, d,
                    self.w.logs()[-2000:]))
            if time.time() - last_t > STALL_S:
                raise RuntimeError("%s: no progress for %d s at %d/%d" % (
                    self.w.tag, STALL_S, d, count))
            time.sleep(0.1)

    def finish(self):
        self.until(self.n)
        self.seconds = time.time() - self.t0
        self.rc = self.w.stop()
        with open(os.path.join(self.ctx.out, self.w.tag + ".rss"),
                  "w") as f:
            for s in self.samples:
                f.write("%.2f %d %d\n" % s)
        return self


def rss_verdict(run, slack_kb):
    """(ok, text): last quarter's peak against the first quarter's."""
    warm = [s for s in run.samples if s[2] >= run.n * WARMUP]
    if len(warm) < 8:
        return False, "only %d samples after warm-up" % len(warm)
    q = len(warm) // 4
    first = max(s[1] for s in warm[:q])
    last = max(s[1] for s in warm[-q:])
    limit = first + slack_kb + first * 2 // 100
    text = "RSS first quarter peak %d KiB, last quarter peak %d KiB " \
           "(limit %d), %d samples" % (first, last, limit, len(warm))
    return last <= limit, text


def vg_verdict(run):
    with open(run.w.vg_path, errors="replace") as f:
        text = f.read()
    kinds = {}
    for k in ("definitely", "indirectly", "possibly"):
        m = re.search(r"%s lost: ([\d,]+) bytes" % k, text)
        kinds[k] = int(m.group(1).replace(",", "")) if m else 0
    m = re.search(r"ERROR SUMMARY: (\d+) errors", text)
    errors = int(m.group(1)) if m else -1
    ok = (errors == 0 and kinds["definitely"] == 0 and
          kinds["indirectly"] == 0 and run.rc == 0)
    return ok, "valgrind: %d errors, definitely lost %d B, indirectly " \
        "lost %d B, possibly lost %d B (not failed), exit %s" % (
            errors, kinds["definitely"], kinds["indirectly"],
            kinds["possibly"], run.rc)


# ---- the workers' inputs ----------------------------------------------------

def inbox_count(ctx, consumer):
    return lambda: ctx.scalar(
        "SELECT count(*) FROM mfa.inbox WHERE consumer = %s", consumer)


def contact_sync(ctx, valgrind, n):
    tag = "cs%s%s" % ("v" if valgrind else "r", uuid.uuid4().hex[:6])
    n_prom, n_chg, n_conf = n * 4 // 10, n * 3 // 10, n * 2 // 10
    n_dem = n - n_prom - n_chg - n_conf
    prom, chg, conf, dem = [], [], [], []
    for i in range(n_prom):
        kind = i % 8
        if kind == 5:
            phone, country = "06 1%03d %04d" % (i % 1000, i % 10000), "NL"
        elif kind == 6:
            phone, country = "not a number %d" % i, "NL"
        elif kind == 7:
            phone, country = None, None
        else:
            phone, country = "+3161%07d" % random.randrange(10 ** 7), "NL"
        prom.append({"contact_id": "%s-%d" % (tag, i),
                     "organization_id": "org-mem",
                     "display_name": "Mem User %d" % i,
                     "email": "%s-%d@example.com" % (tag, i),
                     "phone": phone, "country": country,
                     "locale": ("en", "nl", "de")[i % 3]})
    for i in range(n_chg):
        c = {"contact_id": "%s-%d" % (tag, i % n_prom)}
        if i % 3 == 0:
            c["phone"] = "+3162%07d" % random.randrange(10 ** 7)
        elif i % 3 == 1:
            c["email"] = "%s-%d-new@example.com" % (tag, i)
        else:
            c["display_name"] = "Renamed %d" % i
        chg.append(c)
    for i in range(n_conf):
        j = i % n_prom
        conf.append({"contact_id": "%s-%d" % (tag, j),
                     "email": "%s-%d@example.com" % (tag, j)})
    for i in range(n_dem):
        dem.append({"contact_id": "%s-%d" % (tag, n_prom - 1 - i % n_prom)})
    # all queued before the worker starts: it runs flat out
    for etype, rows in (("contact.promoted", prom), ("contact.changed", chg),
                        ("user.email_confirmed", conf),
                        ("contact.demoted", dem)):
        ctx.publish_lines(etype, rows)
    run = Run(ctx, "contact-sync", valgrind, n, {},
              inbox_count(ctx, "mfa-contact-sync"))
    run.finish()
    ctx.purge("mfa.dispatch.email")         # change notices
    return run


def insert_users(ctx, tag, count, phone=True):
    rows = [("%s-%d" % (tag, i), "User %d" % i,
             "%s-%d@example.com" % (tag, i),
             "+3161%07d" % random.randrange(10 ** 7) if phone else None)
            for i in range(count)]
    with ctx.db() as c, c.cursor() as cur:
        psycopg2.extras.execute_values(
            cur, "INSERT INTO mfa.users (contact_id, organization_id, "
            "display_name, locale, email, email_status, email_confirmed, "
            "phone_e164, phone_status, phone_sms_capable, phone_type) "
            "SELECT v.cid, 'org-mem', v.name, 'en', v.email, 'valid', true, "
            "v.phone, CASE WHEN v.phone IS NULL THEN 'missing' ELSE "
            "'valid' END, v.phone IS NOT NULL, CASE WHEN v.phone IS NULL "
            "THEN NULL ELSE 'mobile' END FROM (VALUES %s) "
            "AS v(cid, name, email, phone)", rows, page_size=1000)
    c.close()
    return [r[0] for r in rows]


def take_codes(ctx, want):
    """login_id -> clear code, from the dispatch jobs mfa-codes queued."""
    codes = {}
    conn = ctx.amqp()
    ch = conn.channel()
    deadline = time.time() + 60
    while len(codes) < want and time.time() < deadline:
        got = False
        for q in ("mfa.dispatch.email", "mfa.dispatch.sms"):
            m, p, body = ch.basic_get(q, auto_ack=True)
            if m is None:
                continue
            got = True
            d = json.loads(body)["data"]
            codes[d["login_id"]] = unseal(ctx.master, d["sealed"],
                                          d["login_id"], d["delivery_id"])
        if not got:
            time.sleep(0.05)
    conn.close()
    return codes


def codes(ctx, valgrind, n):
    tag = "cd%s%s" % ("v" if valgrind else "r", uuid.uuid4().hex[:6])
    n_login = n // 3
    users = insert_users(ctx, tag, (n_login + 3) // 4)
    logins = [str(uuid.uuid4()) for _ in range(n_login)]
    run = Run(ctx, "codes", valgrind, n, {
        "MFA_CODES_RESEND_COOLDOWN_SECONDS": 0,
    }, inbox_count(ctx, "mfa-codes"))
    ctx.publish_lines("login.started", [
        {"login_id": lid, "contact_id": users[i // 4], "ip": "192.0.2.1",
         "user_agent": "check-memory"} for i, lid in enumerate(logins)])
    run.until(n_login)
    ctx.publish_lines("login.code_requested", [
        {"login_id": lid, "method": "sms" if i % 5 == 4 else "email"}
        for i, lid in enumerate(logins)])
    run.until(2 * n_login)
    issued = take_codes(ctx, n_login)
    subs = []
    for i, lid in enumerate(logins):
        code = issued.get(lid, "000000")
        if i % 2 == 0:
            subs.append({"login_id": lid, "code": code})
        else:
            wrong = ("%06d" % ((int(code) + 1) % 10 ** 6), "12345", "abcdef")
            subs.append({"login_id": lid, "code": wrong[i % 3]})
    subs += [{"login_id": logins[i % n_login], "code": "999999"}
             for i in range(n - 3 * n_login)]
    ctx.publish_lines("login.code_submitted", subs)
    run.finish()
    ctx.purge("mfa.dispatch.email", "mfa.dispatch.sms")
    verified = ctx.scalar("SELECT count(*) FROM mfa.logins WHERE "
                          "contact_id LIKE %s AND status = 'verified'",
                          tag + "-%")
    run.note = "%d of %d logins verified" % (verified, n_login)
    run.check = len(issued) == n_login and verified >= n_login // 2
    return run


def dispatch_jobs(ctx, tag, n, channel):
    """n dispatch.code jobs with their rows; published before the worker
    starts."""
    users = insert_users(ctx, tag, n, phone=(channel == "sms"))
    expires = datetime.now(timezone.utc) + timedelta(seconds=590)
    exp_z = expires.isoformat().replace("+00:00", "Z")
    jobs, logins, deliveries, code_rows = [], [], [], []
    for cid in users:
        lid, did = str(uuid.uuid4()), str(uuid.uuid4())
        code = "%06d" % random.randrange(10 ** 6)
        logins.append((lid, cid))
        deliveries.append((did, lid, cid))
        code_rows.append((lid, did))
        jobs.append({"event_id": str(uuid.uuid4()), "type": "dispatch.code",
                     "occurred_at": now_z(),
                     "data": {"delivery_id": did, "login_id": lid,
                              "contact_id": cid, "channel": channel,
                              "sealed": seal(ctx.master, code, lid, did),
                              "expires_at": exp_z}})
    with ctx.db() as c, c.cursor() as cur:
        psycopg2.extras.execute_values(
            cur, "INSERT INTO mfa.logins (login_id, contact_id, status, "
            "methods, expires_at, max_attempts) SELECT v.lid::uuid, v.cid, "
            "'code_sent', ARRAY[%s], now() + interval '15 minutes', 5 "
            "FROM (VALUES %%s) AS v(lid, cid)" % ("'" + channel + "'"),
            logins, page_size=1000)
        psycopg2.extras.execute_values(
            cur, "INSERT INTO mfa.deliveries (delivery_id, login_id, "
            "contact_id, kind, channel, status) SELECT v.did::uuid, "
            "v.lid::uuid, v.cid, 'code', '%s', 'queued' FROM (VALUES %%s) "
            "AS v(did, lid, cid)" % channel, deliveries, page_size=1000)
        psycopg2.extras.execute_values(
            cur, "INSERT INTO mfa.codes (login_id, delivery_id, channel, "
            "code_hash, key_id, expires_at) SELECT v.lid::uuid, "
            "v.did::uuid, '" + channel + "', '\\x00'::bytea, 'mem', "
            "'" + expires.isoformat() + "'::timestamptz "
            "FROM (VALUES %s) AS v(lid, did)", code_rows, page_size=1000)
    c.close()
    conn = ctx.amqp()
    ch = conn.channel()
    ch.confirm_delivery()
    for j in jobs:
        ch.basic_publish("mfa.dispatch", channel, json.dumps(j).encode(),
                         pika.BasicProperties(
                             content_type="application/json",
                             delivery_mode=2, message_id=j["event_id"],
                             type="dispatch.code"), mandatory=True)
    conn.close()


def finished(ctx, tag):
    return lambda: ctx.scalar(
        "SELECT count(*) FROM mfa.deliveries WHERE contact_id LIKE %s AND "
        "status <> 'queued'", tag + "-%")


def sent_check(ctx, run, tag, n):
    sent = ctx.scalar("SELECT count(*) FROM mfa.deliveries WHERE "
                      "contact_id LIKE %s AND status = 'sent'", tag + "-%")
    run.note = "%d of %d deliveries sent" % (sent, n)
    run.check = sent == n
    return run


def email(ctx, valgrind, n):
    tag = "em%s%s" % ("v" if valgrind else "r", uuid.uuid4().hex[:6])
    dispatch_jobs(ctx, tag, n, "email")
    run = Run(ctx, "email", valgrind, n, {}, finished(ctx, tag))
    return sent_check(ctx, run.finish(), tag, n)


def sms(ctx, valgrind, n):
    tag = "sm%s%s" % ("v" if valgrind else "r", uuid.uuid4().hex[:6])
    dispatch_jobs(ctx, tag, n, "sms")
    run = Run(ctx, "sms", valgrind, n,
              {"MFA_SMS_TWILIO_API_BASE": ctx.fake_url}, finished(ctx, tag))
    return sent_check(ctx, run.finish(), tag, n)


PHASES = {"contact-sync": contact_sync, "codes": codes, "email": email,
          "sms": sms}


# ---- main -------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    ap.add_argument("--workers", default=",".join(ALL_WORKERS))
    ap.add_argument("--keep", action="store_true",
                    help="keep the servers' directory (logs) afterwards")
    args = ap.parse_args()
    n = int(os.environ.get("MFA_MEM_EVENTS", "10000"))
    n_vg = int(os.environ.get("MFA_MEM_VG_EVENTS", "10000"))
    slack = int(os.environ.get("MFA_MEM_RSS_SLACK_KB", "512"))
    wanted = [w for w in args.workers.split(",") if w]
    for w in wanted:
        if w not in PHASES:
            sys.exit("check-memory: unknown worker %s" % w)
    names = [w for w in wanted
             if os.path.exists(os.path.join(args.build, "bin", "mfa-" + w))]
    for w in set(wanted) - set(names):
        log("mfa-%s is not built: skipped" % w)
    if n_vg and subprocess.run(["valgrind", "--version"],
                               capture_output=True).returncode != 0:
        sys.exit("check-memory: valgrind missing (sh scripts/deps.sh)")

    ctx = Context(args)
    t_all = time.time()
    results = []
    try:
        log("starting servers in %s" % ctx.dir)
        ctx.start()
        if "sms" in names:
            ctx.start_fake()
        if "codes" in names or "sms" in names:
            ctx.ctl("settings", "sms", "set", "--client-id", AC, "--from",
                    FROM, stdin="mem-secret-" + uuid.uuid4().hex + "\n")
        for w in names:
            for valgrind, count in ((False, n), (True, n_vg)):
                if count <= 0:
                    continue
                kind = "memcheck" if valgrind else "rss"
                log("mfa-%s: %s over %d events ..." % (w, kind, count))
                run = PHASES[w](ctx, valgrind, count)
                ok, text = (vg_verdict(run) if valgrind
                            else rss_verdict(run, slack))
                if not valgrind and run.rc != 0:
                    ok, text = False, text + "; exit %s" % run.rc
                if not getattr(run, "check", True):
                    ok = False
                note = getattr(run, "note", "")
                results.append((w, kind, count, run.seconds, ok, text, note))
                log("mfa-%s: %s %s in %.0f s: %s%s" % (
                    w, kind, "ok" if ok else "FAILED", run.seconds, text,
                    "; " + note if note else ""))
    except Exception as e:
        results.append(("-", "error", 0, 0, False, str(e), ""))
        log("error: %s" % e)
    finally:
        ctx.stop(args.keep)

    report = os.path.join(ctx.out, "report.txt")
    with open(report, "w") as f:
        for r in results:
            f.write("mfa-%s %s %d events %.0f s %s: %s %s\n" % (
                r[0], r[1], r[2], r[3], "ok" if r[4] else "FAILED", r[5],
                r[6]))
    failed = [r for r in results if not r[4]]
    log("%d run(s), %d failed, %.0f s in all; report %s" % (
        len(results), len(failed), time.time() - t_all, report))
    return 1 if failed or not results else 0


if __name__ == "__main__":
    sys.exit(main())
