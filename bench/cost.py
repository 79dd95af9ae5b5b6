"""Phases 4 and 5 of `make bench`: SMS dispatch concurrency, and cost
(mfa-email alone, the RSS soak and callgrind live here too).

Cost is counted, not timed: instructions per event under
valgrind --tool=callgrind, which are the same from run to run where wall
time is not. Each worker runs under callgrind; after a warm-up (connections
made, statements prepared, caches filled) the counters are zeroed, the
worker is paused, N events are queued, the worker drains them from a full
queue (batches as large as the runtime makes them), and the counters are
dumped: instructions / N. callgrind_annotate then tells where they went.
"""
import base64
import glob
import hashlib
import http.client
import json
import os
import re
import secrets
import struct
import subprocess
import time
import uuid
from datetime import datetime, timedelta, timezone

import nacl.bindings as sodium
from psycopg2.extras import execute_values

import benchlib as bl

REPLIES = "bench.replies"
SMS_DELAY_MS = 150
TWILIO_SID = "AC0123456789abcdef0123456789abcdef"


def seal_key(master_b64):
    """The code-sealing subkey, as shared/mfa/crypto.c derives it
    (crypto_kdf_derive_from_key(32, 2, "mfa-keys", master); see
    tests/integration/mfa_crypto.py)."""
    return hashlib.blake2b(digest_size=32, key=base64.b64decode(master_b64),
                           salt=struct.pack("<Q", 2) + b"\0" * 8,
                           person=b"mfa-keys" + b"\0" * 8).digest()


def seal(code, login_id, delivery_id, key):
    """XChaCha20-Poly1305, nonce in front, AD "login_id:delivery_id"."""
    nonce = os.urandom(24)
    ct = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(
        code.encode(), ("%s:%s" % (login_id, delivery_id)).encode(), nonce, key)
    return base64.b64encode(nonce + ct).decode()


class CostMixin:
    # ---- 4. SMS dispatch concurrency ---------------------------------------------

    def start_twilio(self, delay_ms=0):
        """The fake, answering every request after delay_ms (--delay-ms)
        unless a scripted answer says otherwise."""
        fake = os.path.join(bl.REPO, "tests", "servers", "twilio_fake.py")
        self.twilio = subprocess.Popen(["/usr/bin/python3", fake, "--port", "0",
                                        "--delay-ms", str(delay_ms)],
                                       cwd=bl.REPO, stdout=subprocess.PIPE,
                                       text=True)
        self.twilio_port = int(self.twilio.stdout.readline())
        self.twilio_base = "http://127.0.0.1:%d" % self.twilio_port
        self.load_pids.append(self.twilio.pid)

    def stop_twilio(self):
        self.twilio.terminate()
        self.twilio.wait(10)
        self.twilio = None

    def fake(self, method, path, body=None, conn=None):
        c = conn or http.client.HTTPConnection("127.0.0.1", self.twilio_port,
                                               timeout=30)
        hdr = {"Content-Type": "application/json"}
        c.request(method, path, body=json.dumps(body) if body is not None
                  else None, headers=hdr)
        r = c.getresponse()
        data = r.read()
        if conn is None:
            c.close()
        return json.loads(data) if data else None

    def sequential_client(self, n):
        """One request at a time over one kept-alive connection, as a
        client without concurrency would send (the fake's --delay-ms
        applies to every answer)."""
        auth = base64.b64encode(b"SKbench:secret").decode()
        c = http.client.HTTPConnection("127.0.0.1", self.twilio_port, timeout=30)
        body = "To=%2B15005550100&From=%2B15005550006&Body=bench"
        t0 = time.monotonic()
        for _ in range(n):
            c.request("POST", "/2010-04-01/Accounts/%s/Messages.json" % TWILIO_SID,
                      body=body, headers={
                          "Authorization": "Basic " + auth,
                          "Content-Type": "application/x-www-form-urlencoded"})
            c.getresponse().read()
        el = time.monotonic() - t0
        c.close()
        return n / el

    def sms_settings(self):
        self.ctl("settings", "sms", "set", "--client-id",
                 "SK0123456789abcdef0123456789abcdef", "--from", "+15005550006",
                 "--account-sid", TWILIO_SID,
                 extra={"MFA_SMS_CLIENT_SECRET": "bench-secret"})

    def request_codes(self, logins, method, tag):
        """login.code_requested for each login through a running mfa-codes;
        returns once every one is answered (the dispatch jobs are queued)."""
        evs = [("login.code_requested", {"login_id": lid, "method": method})
               for lid, _, _ in logins]
        path, _ = self.write_events(tag, evs)
        self.broker.purge(REPLIES)
        sink = self.sink(len(evs), tag)
        self.preload(path)
        rows, _ = sink.wait()
        st = {}
        for r in rows:
            st[r[2]] = st.get(r[2], 0) + 1
        if st.get("sent", 0) < len(evs):
            self.notes.append("%s: login.code_requested answered %s" % (tag, st))
        return st

    def dispatch_jobs(self, channel, n, tag):
        """n dispatch.code jobs as mfa-codes makes them (login, delivery and
        live code rows, the code sealed for the worker), queued on
        mfa.dispatch/<channel>: the dispatch worker measured alone."""
        users = self.next_users(n)
        key = seal_key(self.base_env["MFA_KEYS_MASTER_KEY"])
        exp = datetime.now(timezone.utc) + timedelta(seconds=590)
        exp_s = exp.strftime("%Y-%m-%dT%H:%M:%SZ")
        logins, dels, codes, evs = [], [], [], []
        for cid, _, _ in users:
            lid, did = str(uuid.uuid4()), str(uuid.uuid4())
            code = "%06d" % secrets.randbelow(10 ** 6)
            logins.append((lid, cid, channel))
            dels.append((did, lid, cid, channel))
            codes.append((lid, did, channel, exp))
            evs.append(("dispatch.code", {
                "delivery_id": did, "login_id": lid, "contact_id": cid,
                "channel": channel, "sealed": seal(code, lid, did, key),
                "expires_at": exp_s}))
        with self.db.c.cursor() as cur:
            execute_values(cur, "INSERT INTO mfa.logins (login_id, contact_id, "
                           "status, methods, expires_at, max_attempts) VALUES %s",
                           logins, template="(%s, %s, 'code_sent', ARRAY[%s], "
                           "now() + interval '15 minutes', 5)", page_size=2000)
            execute_values(cur, "INSERT INTO mfa.deliveries (delivery_id, "
                           "login_id, contact_id, kind, channel, status) VALUES %s",
                           dels, template="(%s, %s, %s, 'code', %s, 'queued')",
                           page_size=2000)
            execute_values(cur, "INSERT INTO mfa.codes (login_id, delivery_id, "
                           "channel, code_hash, key_id, expires_at) VALUES %s",
                           codes, template="(%s, %s, %s, '\\x00'::bytea, "
                           "'bench', %s)", page_size=2000)
        path, _ = self.write_events(tag, evs)
        return path, users

    def queue_jobs(self, channel, n, tag):
        path, users = self.dispatch_jobs(channel, n, tag)
        self.preload(path, reply_to=None, exchange="mfa.dispatch",
                     routing_key=channel)
        return users

    def phase_email_alone(self):
        """mfa-email alone: dispatch.code jobs drained by one process (the
        end-to-end figure runs mfa-codes and mfa-email together)."""
        if not self.have("mfa-email"):
            return
        w = self.start_worker("mfa-email", tag="alone", rss=False)
        part = self.cfg["e2e_drain"]
        runs = []
        for _ in range(self.cfg["reps"]):
            w.pause()
            self.queue_jobs("email", part, "email-jobs")
            self.smtp_new()
            target = self.db.inbox("mfa-email") + part
            m = self.meter()
            w.resume()
            self.wait_drained("mfa.dispatch.email",
                              lambda: self.db.inbox("mfa-email"), target)
            mails = self.smtp_wait(part, 60)
            met = m.stop()
            runs.append({"n": part, "mails": len(mails), "meter": met,
                         "per_s": bl.rnd(bl.steady_rate([r[0] for r in mails]))})
            bl.log("mfa-email alone: %s/s" % runs[-1]["per_s"])
        self.stop_proc(w)
        self.details["email_alone"] = {
            "runs": runs, "per_s": bl.median([r["per_s"] for r in runs])}

    def sms_sent(self):
        return self.db.inbox("mfa-sms")

    def phase_sms(self):
        need = ("mfa-sms",)
        have_fake = os.path.exists(os.path.join(bl.REPO, "tests", "servers",
                                                "twilio_fake.py"))
        if not all(self.have(w) for w in need) or not have_fake:
            self.notes.append("SMS dispatch not available (needs mfa-sms "
                              "and tests/servers/twilio_fake.py)")
            self.details["sms"] = {"available": False}
            return
        self.start_twilio(SMS_DELAY_MS)
        self.sms_settings()
        seq = self.sequential_client(10 if self.cfg["quick"] else 20)
        sms = self.start_worker("mfa-sms")
        base = self.db.inbox("mfa-sms")
        runs = []
        n = self.cfg["sms_n"]
        for _ in range(self.cfg["reps"]):
            sms.pause()
            self.fake("POST", "/_fake/reset")
            path, _ = self.dispatch_jobs("sms", n, "sms-jobs")
            self.preload(path, reply_to=None, exchange="mfa.dispatch",
                         routing_key="sms")
            target = self.sms_sent() + n
            m = self.meter()
            sms.resume()
            self.wait_drained("mfa.dispatch.sms", self.sms_sent, target, 900)
            met = m.stop()
            reqs = self.fake("GET", "/_fake/requests")
            t_out = [int(r["t_out"] * 1e6) for r in reqs if r.get("t_out")]
            runs.append({"n": n, "requests": len(reqs),
                         "answered_201": sum(1 for r in reqs
                                             if r.get("answered") == 201),
                         "per_s": bl.rnd(bl.steady_rate(t_out)), "meter": met})
            bl.log("mfa-sms: %s/s (150 ms fake)" % runs[-1]["per_s"])
        events = self.db.inbox("mfa-sms") - base
        self.stop_proc(sms)
        self.record_rss("mfa-sms", sms, events=events)
        # The soak and callgrind want the fake answering at once.
        self.stop_twilio()
        self.start_twilio()
        self.details["sms"] = {
            "available": True, "runs": runs, "delay_ms": SMS_DELAY_MS,
            "per_s": bl.median([r["per_s"] for r in runs]),
            "sequential_per_s": round(seq, 2),
            "concurrency": os.environ.get("MFA_SMS_CONCURRENCY",
                                          "128 (default)")}

    # ---- 5a. the soak: RSS over BENCH_EVENTS events per worker -------------------

    def phase_soak(self):
        """Every available worker at once, fresh processes, each fed up to
        BENCH_EVENTS events of its own in small chunks (codes stay within
        their lifetime): contact.promoted of new contacts, login.started,
        dispatch.code jobs for email and for SMS (the Twilio fake answering
        at once). RSS sampled every 0.5 s. Bounded in time (BENCH_SOAK_S):
        what was not processed by then is purged, and the report gives
        the events each process handled."""
        total = self.cfg["events"]
        cap_s = self.cfg["soak_s"]
        chunk = max(100, min(total, 2000))
        seq = [0]

        def promoted(k):
            evs = []
            for _ in range(k):
                seq[0] += 1
                i = seq[0]
                evs.append(("contact.promoted", {
                    "contact_id": "soak-%07d" % i, "organization_id": "org-soak",
                    "display_name": "Soak User %d" % i,
                    "email": "s%07d@bench.example" % i,
                    "phone": "+3163%07d" % i, "locale": "en"}))
            self.preload(self.write_events("soak-promoted", evs)[0],
                         reply_to=None)

        def started(k):
            self.preload(self.write_events(
                "soak-started", self.login_started_events(k)[0])[0])

        feeds = []
        if self.have("mfa-contact-sync"):
            feeds.append(("mfa-contact-sync", "mfa.contact-sync", promoted))
        if self.have("mfa-codes"):
            feeds.append(("mfa-codes", "mfa.login", started))
        if self.have("mfa-email"):
            feeds.append(("mfa-email", "mfa.dispatch.email",
                          lambda k: self.queue_jobs("email", k, "soak-email")))
        if self.have("mfa-sms") and getattr(self, "twilio", None):
            feeds.append(("mfa-sms", "mfa.dispatch.sms",
                          lambda k: self.queue_jobs("sms", k, "soak-sms")))
        procs, base, left = {}, {}, {}
        for name, _, _ in feeds:
            base[name] = self.db.inbox(name)
            procs[name] = self.start_worker(name, tag="soak")
            left[name] = total
        m = self.meter()
        t0 = time.time()
        done = lambda n: self.db.inbox(n) - base[n]  # noqa: E731
        while time.time() - t0 < cap_s:
            busy = False
            for name, queue, feed in feeds:
                if left[name] and self.broker.depth(queue) < chunk // 2:
                    if name == "mfa-sms":
                        self.fake("POST", "/_fake/reset")
                    k = min(chunk, left[name])
                    feed(k)
                    left[name] -= k
                busy = busy or left[name] > 0 or self.broker.depth(queue) > 0
            self.broker.purge(REPLIES)
            if not busy and all(done(n) >= total for n in procs):
                break
            time.sleep(1)
        met = m.stop()
        for name, queue, _ in feeds:
            self.broker.purge(queue)
        time.sleep(1)
        out = {"events_per_worker": total, "wall_s": round(time.time() - t0, 1),
               "cap_s": cap_s, "meter": met, "workers": sorted(procs),
               "processed": {}}
        for name, p in procs.items():
            ev = done(name)
            out["processed"][name] = ev
            self.stop_proc(p)
            self.record_rss(name, p, events=ev)
        self.broker.purge(REPLIES)
        self.details["soak"] = out
        short = {n: e for n, e in out["processed"].items() if e < total}
        if short:
            self.notes.append(
                "soak stopped at its time limit (BENCH_SOAK_S=%d s) before "
                "BENCH_EVENTS=%d events in: %s" % (cap_s, total, ", ".join(
                    "%s (%d)" % kv for kv in sorted(short.items()))))
        bl.log("soak: %s in %.0f s" % (out["processed"], out["wall_s"]))

    @property
    def phone_of(self):
        if not hasattr(self, "_phone_of"):
            self._phone_of = {cid: ph for cid, _, ph in self.users}
        return self._phone_of

    # ---- 5. cost: callgrind ------------------------------------------------------

    def cg_worker(self, name, steps, done, argv=None, wait="broker connected"):
        """steps: [(label, produce(n))]; done(): events processed so far."""
        k, warm = self.cfg["cg_events"], self.cfg["cg_warmup"]
        base = os.path.join(self.out, "cg", name)
        for f in glob.glob(base + ".out*"):
            os.unlink(f)
        argv = ["valgrind", "--tool=callgrind", "--callgrind-out-file=%s.out" % base,
                *(argv or [os.path.join(self.build, "bin", name)])]
        p = self.start_worker(name, rss=False, tag="cg", argv=argv, wait=wait,
                              extra={"BENCH_PG_CONNINFO": self.bare_dsn})
        self.details["commands"]["callgrind"] = (
            "valgrind --tool=callgrind --callgrind-out-file=F WORKER; "
            "callgrind_control -z PID (after warm-up); callgrind_control "
            "-d PID (after N events)")
        out = {}
        try:
            for label, produce in steps:
                c0 = done()
                produce(warm)
                bl.wait_until(lambda: done() >= c0 + warm, 600, 0.5,
                              "%s warm-up" % label)
                subprocess.run(["callgrind_control", "-z", str(p.pid)],
                               capture_output=True, timeout=120)
                p.pause()
                c1 = done()
                produce(k)
                p.resume()
                bl.wait_until(lambda: done() >= c1 + k, 900, 0.5, label)
                before = set(glob.glob(base + ".out.*"))
                subprocess.run(["callgrind_control", "-d", str(p.pid)],
                               capture_output=True, timeout=120)
                bl.wait_until(lambda: set(glob.glob(base + ".out.*")) - before,
                              60, 0.2, "callgrind dump")
                dump = sorted(set(glob.glob(base + ".out.*")) - before)[-1]
                total = cg_total(dump)
                ev = done() - c1
                calls = cg_calls(dump)
                out[label] = {"instructions": total, "events": ev,
                              "per_event": int(total / ev) if ev else None,
                              "calls_per_event": {
                                  k: round(v / float(ev), 2)
                                  for k, v in sorted(calls.items())} if ev else {},
                              "by_object": cg_by_object(dump, total),
                              "top": cg_top(dump), "dump": os.path.relpath(
                                  dump, bl.REPO)}
                bl.log("%s: %s instructions/event" % (label,
                                                       out[label]["per_event"]))
        finally:
            self.stop_proc(p)
        return out

    def phase_cost(self):
        res = {}
        ipe = {}
        if self.have("mfa-contact-sync"):
            seq = [0]

            def promote(n):
                evs = []
                for _ in range(n):
                    seq[0] += 1
                    i = seq[0]
                    evs.append(("contact.promoted", {
                        "contact_id": "cg-%06d" % i, "organization_id": "org-cg",
                        "display_name": "Cg User %d" % i,
                        "email": "cg%06d@bench.example" % i,
                        "phone": "+3162%07d" % i, "locale": "en"}))
                self.preload(self.write_events("cg-promoted", evs)[0],
                             reply_to=None)
            res.update(self.cg_worker(
                "mfa-contact-sync", [("mfa-contact-sync:contact.promoted",
                                      promote)],
                lambda: self.db.inbox("mfa-contact-sync")))
        feed = None
        if self.have("mfa-codes"):
            feed = self.start_worker("mfa-codes", tag="cgfeed", rss=False)
        if feed and self.have("mfa-email"):
            by_email = {}

            def email_jobs(n):
                logins = self.prepare_logins(n, "cg-email-logins")
                by_email.update({e.lower(): lid for lid, _, e in logins})
                self.request_codes(logins, "email", "cg-email-requested")
            res.update(self.cg_worker(
                "mfa-email", [("mfa-email:dispatch.code", email_jobs)],
                lambda: self.db.inbox("mfa-email")))
            self.harvest(self.smtp_wait(10 ** 9, 2), by_email)
        if self.have("mfa-sms") and getattr(self, "twilio", None):
            def sms_jobs(n):
                self.fake("POST", "/_fake/reset")
                self.queue_jobs("sms", n, "cg-sms-jobs")
            res.update(self.cg_worker(
                "mfa-sms", [("mfa-sms:dispatch.code", sms_jobs)],
                lambda: self.db.inbox("mfa-sms")))
        if feed:
            self.stop_proc(feed)
            pend = []

            def started(n):
                evs, logins = self.login_started_events(n)
                pend.extend(logins)
                self.preload(self.write_events("cg-started", evs)[0])

            def requested(n):
                take = pend[:n]
                del pend[:n]
                evs = [("login.code_requested", {"login_id": lid,
                                                 "method": "email"})
                       for lid, _, _ in take]
                self.preload(self.write_events("cg-requested", evs)[0])

            subs = []

            def submitted(n):
                take = self.take_codes(n)
                subs.extend(lid for _, lid, _ in take)
                evs = [("login.code_submitted", {"login_id": lid, "code": c})
                       for _, lid, c in take]
                if len(evs) < n:
                    raise RuntimeError("not enough codes for code_submitted")
                self.preload(self.write_events("cg-submitted", evs)[0])
            steps = [("mfa-codes:login.started", started),
                     ("mfa-codes:login.code_requested", requested)]
            if len(self.codes) >= self.cfg["cg_events"] + self.cfg["cg_warmup"]:
                steps.append(("mfa-codes:login.code_submitted", submitted))
            res.update(self.cg_worker("mfa-codes", steps,
                                      lambda: self.db.inbox("mfa-codes")))
            if subs:
                ok = self.db.scalar("SELECT count(*) FROM mfa.logins WHERE "
                                    "login_id = ANY(%s::uuid[]) AND status = "
                                    "'verified'", subs)
                if ok < len(subs):
                    self.notes.append("callgrind login.code_submitted: %d of %d "
                                      "logins verified" % (ok, len(subs)))
            for q in ("mfa.dispatch.email", "mfa.dispatch.sms"):
                self.broker.purge(q)
        # The bare pipeline, for scale: the same hop with no logic.
        self.broker.purge("mfa.login")

        def bare_in(n):
            evs, _ = self.login_started_events(n)
            self.preload(self.write_events("cg-bare", evs)[0])
        bare_done = lambda: self.db.scalar(  # noqa: E731
            "SELECT count(*) FROM bench.bare_hop")
        for mode in ("per_message", "batched"):
            argv = [self.tool["bare"]] + (["--batched"] if mode == "batched"
                                          else [])
            res.update(self.cg_worker("bare-%s" % mode,
                                      [("bare:%s" % mode, bare_in)], bare_done,
                                      argv=argv, wait="consuming"))
        self.broker.purge(REPLIES)
        for label, r in res.items():
            ipe[label] = r["per_event"]
        self.details["cost"] = res
        self.details["instructions_per_event"] = ipe


def cg_total(path):
    with open(path) as f:
        for line in f:
            if line.startswith("totals:") or line.startswith("summary:"):
                return int(line.split()[1])
    return 0


def cg_annotate(path, inclusive):
    r = subprocess.run(["callgrind_annotate", "--threshold=100", "--auto=no",
                        "--inclusive=%s" % ("yes" if inclusive else "no"), path],
                       capture_output=True, text=True, timeout=300)
    rows = []
    for line in r.stdout.splitlines():
        m = re.match(r"\s*([\d,]+)\s+(?:\(\s*[\d.]+%\)\s+)?(\S.*)$", line)
        if not m or ":" not in m.group(2):
            continue
        rows.append((int(m.group(1).replace(",", "")), m.group(2)))
    return rows


# Calls worth counting per event: database round trips (the PQexec*
# entry points, and PQpipelineSync: the runtime's db_pipeline sends any
# number of statements per sync, one round trip each), broker frames,
# system calls, allocations.
CG_CALLS = {
    "PQexecParams": "pq_exec", "PQexecPrepared": "pq_exec", "PQexec": "pq_exec",
    "PQprepare": "pq_exec", "PQpipelineSync": "pq_exec",
    "amqp_basic_publish": "amqp_publish", "amqp_basic_ack": "amqp_ack",
    "amqp_simple_wait_frame_noblock": "amqp_read_frame",
    "poll": "poll", "__poll": "poll", "alarm": "alarm",
    "malloc": "malloc", "json_tokener_parse_ex": "json_parse",
    "curl_multi_perform": "curl_multi_perform",
    "icu_72::RegexMatcher::MatchChunkAt(int, signed char, UErrorCode&)":
        "icu_regex_match",
}


def cg_calls(path):
    """Call counts from a callgrind dump (its compressed name table)."""
    names, out, cur = {}, {}, None
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith(("cfn=", "fn=")):
                m = re.match(r"c?fn=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
                if not m:
                    continue
                if m.group(2):
                    names[m.group(1)] = m.group(2)
                if line.startswith("cfn="):
                    cur = names.get(m.group(1))
            elif line.startswith("calls=") and cur in CG_CALLS:
                k = CG_CALLS[cur]
                out[k] = out.get(k, 0) + int(line[6:].split()[0])
    return out


def cg_by_object(path, total):
    """Exclusive instructions by shared object: our code, libpq, json-c...
    (lines at ~100% are the frames around everything, not costs)."""
    agg = {}
    for ir, fn in cg_annotate(path, inclusive=False):
        if total and ir >= 0.995 * total:
            continue
        m = re.search(r"\[(.*?)\]\s*$", fn)
        obj = os.path.basename(m.group(1)) if m else "?"
        obj = re.sub(r"\.so[.\d]*$", "", obj)
        agg[obj] = agg.get(obj, 0) + ir
    return {k: round(100.0 * v / total, 1) for k, v in
            sorted(agg.items(), key=lambda kv: -kv[1])[:10] if total}


def cg_top(path, n=12):
    """Inclusive top functions, below the loop (worker_main etc.)."""
    out, seen = [], set()
    total = cg_total(path)
    for ir, fn in cg_annotate(path, inclusive=True):
        name = re.sub(r"\s*\[.*\]\s*$", "", fn).split(":", 1)[-1]
        if name in seen or name.startswith(("0x", "???", "(below")) or (
                total and ir >= 0.98 * total):
            continue
        seen.add(name)
        out.append([name, ir])
        if len(out) >= n:
            break
    return out
