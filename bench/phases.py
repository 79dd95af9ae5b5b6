"""The phases of `make bench` (see run.py): what runs, in which order.

Context holds the servers, the workers that are up, the users and the
codes harvested from the SMTP server, and collects every figure into
self.details (raw) from which run.py writes results.json and REPORT.md.

Throughput is measured by draining a preloaded queue: the worker is
paused (SIGSTOP) while build/bench/load publishes N events, then resumed;
the rate is the steady part (5th-95th percentile) of the reply or
acceptance times. Latency is measured open-loop by build/bench/client
(the producer library) at a fixed rate.
"""
import json
import math
import os
import re
import subprocess
import time
import uuid

import benchlib as bl
from cost import CostMixin

REPLIES = "bench.replies"


# Callers of the closed-loop run that finds the interactive maximum.
MAX_CALLERS = 128

class Context(CostMixin):
    def __init__(self, cfg, build, servers_dir):
        self.cfg = cfg
        self.build = build
        self.servers_dir = servers_dir
        self.out = os.path.join(bl.REPO, "var", "bench")
        self.logdir = os.path.join(self.out, "logs")
        self.raw = os.path.join(self.out, "raw")
        self.tool = {t: os.path.join(build, "bench", t)
                     for t in ("bare", "load", "client", "smtp_sink")}
        self.notes = []
        self.durations = {}
        self.details = {"config": cfg, "durations": self.durations,
                        "notes": self.notes, "commands": {}}
        self.active = {}       # name -> Proc of running workers
        self.load_pids = []    # load side processes to account CPU for
        self.users = []
        self.user_next = 0
        self.codes = []        # (accept_us, login_id, code), oldest first
        self.smtp_off = 0
        self.srv = None
        self.seq = 0

    # ---- set-up and tear-down ------------------------------------------------

    def have(self, name):
        return os.path.exists(os.path.join(self.build, "bin", name))

    def setup(self):
        for d in (self.logdir, self.raw, os.path.join(self.out, "cg")):
            os.makedirs(d, exist_ok=True)
        for f in os.listdir(self.raw):
            os.unlink(os.path.join(self.raw, f))
        missing = [t for t, p in self.tool.items()
                   if t != "client" and not os.path.exists(p)]
        if missing:
            raise SystemExit("bench: tools not built: %s (use make bench)" %
                             ", ".join(missing))
        bl.log("starting servers in %s" % os.path.relpath(self.servers_dir,
                                                          bl.REPO))
        self.srv = bl.Servers(self.servers_dir)
        env = self.srv.start()
        self.admin_dsn = env["MFA_POSTGRES_CONNINFO"]
        self.worker_dsn = re.sub(r"user=\S+", "user=mfa_worker", self.admin_dsn)
        self.base_env = dict(os.environ)
        self.base_env.update(env)
        self.base_env["MFA_KEYS_MASTER_KEY"] = __import__("base64").b64encode(
            os.urandom(32)).decode()
        self.db = bl.Db(self.admin_dsn)
        # Evidence for "fsync-bound": time PostgreSQL spends in WAL syncs;
        # for "round trips": statements and COMMITs per event, counted by
        # pg_stat_statements (loaded by a restart of this private server).
        self.db.rows("ALTER SYSTEM SET track_wal_io_timing = on")
        self.db.rows("ALTER SYSTEM SET shared_preload_libraries = "
                     "'pg_stat_statements'")
        self.db.c.close()
        self.srv.sh("restart-postgres", self.srv.dir)
        self.db = bl.Db(self.admin_dsn)
        try:
            self.db.rows("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        except Exception as e:
            self.notes.append("pg_stat_statements unavailable: %s" % e)
        self.ctl("migrate")
        self.db.rows("CREATE SCHEMA IF NOT EXISTS bench")
        self.db.rows("CREATE TABLE IF NOT EXISTS bench.bare_hop ("
                     " event_id text, body text, at timestamptz DEFAULT now())")
        # bare has a role of its own so that its statements are counted
        # apart from the driver's (the driver connects as the admin).
        self.db.rows("DO $$BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE "
                     "rolname = 'bench_bare') THEN CREATE ROLE bench_bare "
                     "LOGIN; END IF; END$$")
        self.db.rows("GRANT USAGE ON SCHEMA bench TO bench_bare")
        self.db.rows("GRANT SELECT, INSERT ON bench.bare_hop TO bench_bare")
        self.bare_dsn = re.sub(r"user=\S+", "user=bench_bare", self.admin_dsn)
        self.start_smtp_sink()
        self.broker = bl.Broker(env["MFA_AMQP_URL"])
        self.details["available"] = {
            w: self.have(w) for w in ("mfa-contact-sync", "mfa-codes",
                                      "mfa-email", "mfa-sms")}
        self.details["available"]["producer client"] = os.path.exists(
            self.tool["client"])
        self.details["available"]["twilio fake"] = os.path.exists(
            os.path.join(bl.REPO, "tests", "servers", "twilio_fake.py"))
        # Every worker declares the topology once (queues, retry tiers).
        for w in ("mfa-contact-sync", "mfa-codes", "mfa-email", "mfa-sms"):
            if self.have(w):
                p = self.start_worker(w, rss=False, tag="topology")
                p.stop()
                del self.active[p.name]
        self.details["machine"] = machine_info()
        self.details["versions"] = versions(self)

    def ctl(self, *args, stdin=None, extra=None):
        env = dict(self.base_env)
        env["MFA_POSTGRES_CONNINFO"] = self.admin_dsn
        env.update(extra or {})
        r = subprocess.run([os.path.join(self.build, "bin", "mfactl"), *args],
                           cwd=bl.REPO, env=env, input=stdin,
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError("mfactl %s: %s%s" % (args, r.stdout, r.stderr))
        return r.stdout

    def start_smtp_sink(self):
        self.smtp_file = os.path.join(self.raw, "smtp-accepted.tsv")
        open(self.smtp_file, "w").close()
        self.smtp = subprocess.Popen(
            [self.tool["smtp_sink"], "--out", self.smtp_file], cwd=bl.REPO,
            stdout=subprocess.PIPE, text=True)
        self.smtp_port = int(self.smtp.stdout.readline())
        self.load_pids.append(self.smtp.pid)

    def worker_env(self, extra=None):
        env = dict(self.base_env)
        env.update({
            "MFA_POSTGRES_CONNINFO": self.worker_dsn,
            "MFA_SMTP_URL": "smtp://127.0.0.1:%d" % self.smtp_port,
            "MFA_SMTP_STARTTLS": "off",
            "MFA_AMQP_HEARTBEAT_SECONDS": "60",
            # The longest life a code may have (NIST ceiling): the codes
            # of one phase are submitted in a later one.
            "MFA_CODES_TTL_SECONDS": "600",
        })
        if getattr(self, "twilio_base", None):
            env["MFA_SMS_TWILIO_API_BASE"] = self.twilio_base
        env.update(extra or {})
        return env

    def start_worker(self, name, rss=True, tag=None, argv=None, extra=None,
                     wait="broker connected"):
        label = "%s-%s" % (name, tag) if tag else name
        argv = argv or [os.path.join(self.build, "bin", name)]
        p = bl.Proc(label, argv, self.worker_env(extra), self.logdir, rss=rss)
        self.active[label] = p
        if wait:
            p.wait_log(wait, timeout=240)
        self.details["commands"].setdefault(name, " ".join(
            os.path.relpath(x, bl.REPO) if x.startswith(bl.REPO) else x
            for x in argv))
        return p

    def stop_proc(self, p):
        rc = p.stop()
        self.active.pop(p.name, None)
        return rc

    def record_rss(self, worker, p, events=None):
        s = p.rss.summary()
        if events is not None:
            s["events"] = events
        self.details.setdefault("rss", {}).setdefault(worker, []).append(s)

    def teardown(self, keep=False):
        for p in list(self.active.values()):
            try:
                self.stop_proc(p)
            except Exception:
                pass
        for attr in ("smtp", "twilio"):
            p = getattr(self, attr, None)
            if p is not None and p.poll() is None:
                p.terminate()
                p.wait(10)
        if self.srv and not keep:
            bl.log("stopping servers")
            self.srv.stop(clean=True)

    # ---- events ----------------------------------------------------------------

    def next_users(self, n):
        out = []
        for _ in range(n):
            out.append(self.users[self.user_next % len(self.users)])
            self.user_next += 1
        return out

    def write_events(self, tag, events):
        """events: [(type, data)] -> a file for load/client; returns
        (path, event ids)."""
        self.seq += 1
        path = os.path.join(self.raw, "%02d-%s.events" % (self.seq, tag))
        ids = []
        with open(path, "w") as f:
            for etype, data in events:
                eid = str(uuid.uuid4())
                ids.append(eid)
                f.write("%s\t%s\t%s\n" % (eid, etype, json.dumps(
                    data, separators=(",", ":"))))
        return path, ids

    def preload(self, path, reply_to=REPLIES, queue=None, exchange=None,
                routing_key=None):
        argv = [self.tool["load"], "preload", path]
        if reply_to:
            argv += ["--reply-to", reply_to]
        if queue:
            argv += ["--queue", queue]
        if exchange:
            argv += ["--exchange", exchange]
        if routing_key:
            argv += ["--routing-key", routing_key]
        r = bl.run_json(argv, self.base_env)
        r["per_s"] = round(r["published"] / r["seconds"], 1) if r["seconds"] else None
        self.details.setdefault("preload_rates", []).append(r["per_s"])
        return r

    def sink(self, n, tag, idle=60):
        out = os.path.join(self.raw, "%02d-%s.replies" % (self.seq, tag))
        s = bl.Sink(self.tool["load"], REPLIES, n, out, self.base_env, idle)
        self.load_pids.append(s.p.pid)
        return s

    def meter(self, extra_pids=()):
        return bl.Meter({
            "broker": self.srv.broker_pids,
            "postgres": self.srv.postgres_pids,
            "ours": lambda: [p.pid for p in self.active.values() if p.alive()],
            "load": lambda: [p for p in self.load_pids + list(extra_pids) +
                             [os.getpid()] if os.path.exists("/proc/%d" % p)],
        }, self.db).start()

    def wait_drained(self, queue, done, target, timeout=3600):
        """Until `queue` is empty (cheap to ask the broker), then until
        done() >= target (a count in the database)."""
        bl.wait_until(lambda: self.broker.depth(queue) == 0, timeout, 0.5,
                      "%s to drain" % queue)
        bl.wait_until(lambda: done() >= target, 120, 0.3, "%s done" % queue)

    def smtp_new(self):
        """Lines accepted by the SMTP sink since the last call."""
        rows = []
        with open(self.smtp_file) as f:
            f.seek(self.smtp_off)
            data = f.read()
        end = data.rfind("\n") + 1
        self.smtp_off += len(data[:end].encode())
        for line in data[:end].splitlines():
            v = line.split("\t")
            if len(v) == 3:
                rows.append((int(v[0]), v[1], v[2]))
        return rows

    def smtp_wait(self, n, timeout):
        got = []
        deadline = time.time() + timeout
        while len(got) < n and time.time() < deadline:
            got += self.smtp_new()
            if len(got) < n:
                time.sleep(0.1)
        return got

    def harvest(self, rows, by_email):
        """Codes of the logins in by_email (address -> login_id) from the
        SMTP server's lines. A user may have had other mail before (users
        are reused round-robin): the newest message is the login's."""
        newest = {}
        for ts, rcpt, code in rows:
            r = rcpt.lower()
            if r in by_email and code != "-" and ts >= newest.get(r, (0,))[0]:
                newest[r] = (ts, code)
        for r, (ts, code) in sorted(newest.items(), key=lambda kv: kv[1][0]):
            self.codes.append((ts, by_email.pop(r), code))

    def take_codes(self, n):
        """The n freshest unused codes (their logins are the newest too)."""
        take = self.codes[-n:] if n > 0 else []
        del self.codes[len(self.codes) - len(take):]
        return take

    # ---- 0. users (contact-sync) ----------------------------------------------

    def phase_users(self):
        n = self.cfg["users"]
        self.users = [("bench-%07d" % i, "u%07d@bench.example" % i,
                       "+3161%07d" % i) for i in range(n)]
        if self.have("mfa-contact-sync"):
            evs = [("contact.promoted", {
                "contact_id": cid, "organization_id": "org-bench",
                "display_name": "Bench User %d" % i, "email": email,
                "phone": phone, "country": "NL", "locale": "en"})
                for i, (cid, email, phone) in enumerate(self.users)]
            path, _ = self.write_events("promoted", evs)
            w = self.start_worker("mfa-contact-sync")
            w.pause()
            pre = self.preload(path, reply_to=None)
            m = self.meter()
            t0 = time.time()
            w.resume()
            self.wait_drained("mfa.contact-sync",
                              lambda: self.db.inbox("mfa-contact-sync"), n)
            met = m.stop()
            ts = [r[0] for r in self.db.rows(
                "SELECT (extract(epoch FROM received_at) * 1e6)::bigint "
                "FROM mfa.inbox WHERE consumer = 'mfa-contact-sync'")]
            self.stop_proc(w)
            self.record_rss("mfa-contact-sync", w, events=n)
            self.details["commands"]["mfa-contact-sync"] = "build/bin/mfa-contact-sync"
            self.details["contact_sync"] = {
                "events": n, "wall_s": round(time.time() - t0, 1),
                "per_s": bl.rnd(bl.steady_rate(ts)), "preload": pre,
                "meter": met}
        else:
            self.notes.append("mfa-contact-sync not built: users inserted "
                              "with SQL")
            self.db.rows(
                "INSERT INTO mfa.users (contact_id, organization_id, "
                "display_name, locale, email, email_status, phone_e164, "
                "phone_status, phone_type, phone_sms_capable) "
                "SELECT 'bench-' || lpad(i::text, 7, '0'), 'org-bench', "
                "'Bench User ' || i, 'en', 'u' || lpad(i::text, 7, '0') || "
                "'@bench.example', 'valid', '+3161' || lpad(i::text, 7, '0'),"
                " 'valid', 'mobile', true FROM generate_series(0, %s) i "
                "ON CONFLICT DO NOTHING", n - 1)
        # The portal confirms addresses (user.email_confirmed); here SQL.
        self.db.rows("UPDATE mfa.users SET email_confirmed = true "
                     "WHERE contact_id LIKE 'bench-%%'")
        ok = self.db.scalar("SELECT count(*) FROM mfa.users WHERE contact_id "
                            "LIKE 'bench-%%' AND email_status = 'valid' "
                            "AND phone_status = 'valid'")
        self.details["users"] = {"created": n, "valid_email_and_phone": ok}

    # ---- 1. the bare pipeline ---------------------------------------------------

    def login_started_events(self, n):
        evs, logins = [], []
        for cid, email, _ in self.next_users(n):
            lid = str(uuid.uuid4())
            logins.append((lid, cid, email))
            evs.append(("login.started", {"login_id": lid, "contact_id": cid}))
        return evs, logins

    def bare_drain(self, mode, n):
        evs, _ = self.login_started_events(n)
        path, _ = self.write_events("bare-%s" % mode, evs)
        self.broker.purge(REPLIES)
        pre = self.preload(path)
        sink = self.sink(n, "bare-%s" % mode)
        m = self.meter()
        argv = [self.tool["bare"]] + (["--batched"] if mode == "batched" else [])
        p = self.start_worker("bare", rss=False, tag=mode, argv=argv,
                              extra={"BENCH_PG_CONNINFO": self.bare_dsn},
                              wait="consuming")
        rows, _ = sink.wait()
        met = m.stop()
        self.stop_proc(p)
        stats = last_json(p.logs())
        return {"n": len(rows), "per_s": bl.rnd(bl.steady_rate(
            [r[0] for r in rows])), "bare": stats, "meter": met,
            "preload_per_s": pre["per_s"]}

    def phase_bare(self):
        out = {}
        for mode in ("per_message", "batched"):
            n = self.cfg["drain_per_message" if mode == "per_message" else "drain"]
            runs = [self.bare_drain(mode, n) for _ in range(self.cfg["reps"])]
            out[mode] = {"runs": runs,
                         "per_s": bl.median([r["per_s"] for r in runs])}
            bl.log("bare %s: %s msg/s (runs %s)" % (
                mode, out[mode]["per_s"], [r["per_s"] for r in runs]))
        self.details["bare"] = out
        self.details["commands"]["bare"] = (
            "build/bench/bare [--batched]  (MFA_AMQP_URL, BENCH_PG_CONNINFO)")

    # ---- 2. mfa-codes: maximum, then latency ----------------------------------------

    def codes_drain(self, w, etype, events, tag):
        path, ids = self.write_events(tag, events)
        w.pause()
        self.broker.purge(REPLIES)
        pre = self.preload(path)
        sink = self.sink(len(events), tag)
        m = self.meter()
        w.resume()
        rows, err = sink.wait()
        met = m.stop()
        statuses = count([r[2] for r in rows])
        return {"n": len(rows), "per_s": bl.rnd(bl.steady_rate(
            [r[0] for r in rows])), "statuses": statuses, "meter": met,
            "preload_per_s": pre["per_s"]}

    def phase_codes_max(self):
        if not self.have("mfa-codes"):
            self.notes.append("mfa-codes not built: login figures not available")
            return
        w = self.start_worker("mfa-codes", tag="A")
        before = self.db.inbox("mfa-codes")
        runs, inter = [], []
        for _ in range(self.cfg["reps"]):
            evs, _ = self.login_started_events(self.cfg["drain"])
            runs.append(self.codes_drain(w, "login.started", evs, "ls-drain"))
            evs, _ = self.login_started_events(self.cfg["drain"])
            inter.append(self.interactive_max(evs, "ls-max"))
        self.stop_proc(w)
        self.record_rss("mfa-codes", w,
                        events=self.db.inbox("mfa-codes") - before)
        drain = bl.median([r["per_s"] for r in runs])
        self.max_ls = bl.median([r["per_s"] for r in inter])
        self.details["login_started_drain"] = {"runs": runs, "per_s": drain}
        self.details["login_started_max"] = {"runs": inter,
                                             "per_s": self.max_ls}
        bl.log("mfa-codes login.started: drains %s/s (runs %s); answers "
               "callers at %s/s at most (runs %s)" % (
                   drain, [r["per_s"] for r in runs], self.max_ls,
                   [r["per_s"] for r in inter]))

    def interactive_max(self, events, tag):
        """The most login.started -> reply per second the portal's side gets:
        the producer library in closed loop (MAX_CALLERS threads, each
        sending its next event when its reply is in). It includes what a
        drain leaves out: the callers' publishes, confirms and replies
        through the broker."""
        res, rows = self.run_client(events, 1e6, tag, threads=MAX_CALLERS)
        done = [r["done"] for r in rows if r["rc"] == 0]
        res["per_s"] = bl.rnd(bl.steady_rate(done))
        return res

    def run_client(self, events, rate, tag, threads=None):
        """Open loop at `rate`; returns latency figures and per-event rows."""
        path, ids = self.write_events(tag, events)
        out = os.path.join(self.raw, "%02d-%s.client" % (self.seq, tag))
        threads = threads or int(min(400, max(32, rate * 0.3)))
        argv = [self.tool["client"], path, "--rate", "%.2f" % rate, "--out",
                out, "--threads", str(threads)]
        m = self.meter()
        summary = bl.run_json(argv, self.base_env,
                              timeout=600 + len(events) / max(rate, 1))
        met = m.stop()
        rows = []
        with open(out) as f:
            for line in f:
                v = line.rstrip("\n").split("\t")
                rows.append({"id": v[0], "due": int(v[1]), "start": int(v[2]),
                             "done": int(v[3]), "rc": int(v[4]),
                             "status": v[5] if len(v) > 5 else ""})
        ok = [r for r in rows if r["rc"] == 0]
        lat = [(r["done"] - r["due"]) / 1000.0 for r in ok]
        res = {"rate": round(rate, 1), "n": len(rows), "errors": len(rows) - len(ok),
               "p50_ms": bl.rnd(bl.pct(lat, 50), 2),
               "p95_ms": bl.rnd(bl.pct(lat, 95), 2),
               "p99_ms": bl.rnd(bl.pct(lat, 99), 2),
               "statuses": count([r["status"] for r in ok]),
               "client": summary, "threads": threads, "meter": met}
        self.details["commands"]["client"] = (
            "build/bench/client EVENTS --rate R --out OUT --threads T")
        return res, rows

    def latency_series(self, make_events, rates, tag):
        """For each rate, cfg.reps open-loop runs; medians of p50/p95/p99."""
        out = {}
        for label, rate in rates:
            runs = []
            for _ in range(self.cfg["reps"]):
                n = max(20, int(rate * self.cfg["latency_s"]))
                evs = make_events(n)
                if not evs:
                    break
                res, _ = self.run_client(evs, rate, "%s-%s" % (tag, label))
                runs.append(res)
            out[label] = {"runs": runs, "rate": round(rate, 1)}
            for k in ("p50_ms", "p95_ms", "p99_ms"):
                out[label][k] = bl.median([r[k] for r in runs])
            bl.log("%s at %s (%.0f/s): p50 %s p95 %s p99 %s ms" % (
                tag, label, rate, out[label]["p50_ms"], out[label]["p95_ms"],
                out[label]["p99_ms"]))
        return out

    def phase_bare_latency(self):
        if not getattr(self, "max_ls", None) or not os.path.exists(
                self.tool["client"]):
            self.notes.append("bare latency not measured (no mfa-codes "
                              "maximum or no producer library)")
            return
        rates = [("half", self.max_ls / 2.0), ("max", self.max_ls)]
        mk = lambda n: self.login_started_events(n)[0]  # noqa: E731
        res = {}
        for mode in ("batched", "per_message"):
            pm_max = self.details["bare"]["per_message"]["per_s"] or 0
            use = rates if mode == "batched" else [
                r for r in rates[:1] if r[1] < 0.8 * pm_max]
            if not use:
                self.notes.append(
                    "bare per-message latency at %.0f/s not measured: above "
                    "its maximum (%.0f/s), the queue would only grow" % (
                        rates[0][1], pm_max))
                continue
            argv = [self.tool["bare"]] + (["--batched"] if mode == "batched"
                                          else [])
            p = self.start_worker("bare", rss=False, tag="lat-" + mode,
                                  argv=argv, wait="consuming",
                                  extra={"BENCH_PG_CONNINFO": self.bare_dsn})
            res[mode] = self.latency_series(mk, use, "bare-" + mode)
            self.stop_proc(p)
        self.details["bare_latency"] = res

    def start_b_workers(self):
        """Processes B live to the end: their RSS covers every later event."""
        if getattr(self, "codes_w", None) is None and self.have("mfa-codes"):
            self.codes_w = self.start_worker("mfa-codes", tag="B")
            self.codes_inbox0 = self.db.inbox("mfa-codes")
        if getattr(self, "email_w", None) is None and self.have("mfa-email"):
            self.email_w = self.start_worker("mfa-email", tag="B")

    def phase_codes_latency(self):
        if not getattr(self, "max_ls", None) or not os.path.exists(
                self.tool["client"]):
            return
        self.start_b_workers()
        rates = [("half", self.max_ls / 2.0), ("max", self.max_ls)]
        mk = lambda n: self.login_started_events(n)[0]  # noqa: E731
        self.details["login_started_latency"] = self.latency_series(
            mk, rates, "login.started")

    # ---- 3. end to end ---------------------------------------------------------------

    def prepare_logins(self, n, tag):
        """n pending logins of distinct users, through mfa-codes."""
        evs, logins = self.login_started_events(n)
        path, _ = self.write_events(tag, evs)
        self.broker.purge(REPLIES)
        sink = self.sink(n, tag)
        self.preload(path)
        rows, _ = sink.wait()
        st = count([r[2] for r in rows])
        if st.get("pending", 0) < n:
            self.notes.append("%s: login.started answered %s" % (tag, st))
        return logins

    def phase_e2e(self):
        self.start_b_workers()  # when run alone (--only e2e)
        if not (getattr(self, "codes_w", None) and getattr(self, "email_w", None)):
            self.notes.append("end-to-end not available (needs mfa-codes, "
                              "mfa-email and the producer library)")
            return
        reps = self.cfg["reps"]
        per = self.cfg["e2e_drain"]
        runs = []
        for _ in range(reps):
            logins = self.prepare_logins(per, "e2e-logins")
            by_email = {e.lower(): lid for lid, _, e in logins}
            evs = [("login.code_requested", {"login_id": lid, "method": "email"})
                   for lid, _, _ in logins]
            path, _ = self.write_events("e2e-requested", evs)
            self.codes_w.pause()
            self.email_w.pause()
            self.broker.purge(REPLIES)
            self.smtp_new()
            pre = self.preload(path)
            sink = self.sink(per, "e2e")
            m = self.meter()
            self.codes_w.resume()
            self.email_w.resume()
            rows, _ = sink.wait()
            mails = self.smtp_wait(per, timeout=600)
            met = m.stop()
            self.harvest(mails, by_email)
            runs.append({
                "n": per, "mails": len(mails),
                "per_s": bl.rnd(bl.steady_rate([r[0] for r in mails])),
                "codes_side_per_s": bl.rnd(bl.steady_rate([r[0] for r in rows])),
                "statuses": count([r[2] for r in rows]), "meter": met,
                "preload_per_s": pre["per_s"]})
            bl.log("e2e drain: %s flows/s (%d mails of %d)" % (
                runs[-1]["per_s"], len(mails), per))
        e2e = {"runs": runs, "per_s": bl.median([r["per_s"] for r in runs])}
        # Latency at half the sustained rate, open loop.
        rate = (e2e["per_s"] or 10) / 2.0
        lat_runs = []
        for _ in range(reps):
            n = max(20, int(rate * self.cfg["latency_s"]))
            logins = self.prepare_logins(n, "e2e-lat-logins")
            by_email = {e.lower(): lid for lid, _, e in logins}
            email_of = {lid: e.lower() for lid, _, e in logins}
            self.smtp_new()
            evs = [("login.code_requested", {"login_id": lid, "method": "email"})
                   for lid, _, _ in logins]
            res, crow = self.run_client(evs, rate, "e2e-latency")
            mails = self.smtp_wait(sum(1 for r in crow if r["rc"] == 0), 120)
            at = {rcpt.lower(): ts for ts, rcpt, _ in mails}
            self.harvest(mails, by_email)
            lat = []
            for (lid, _, _), r in zip(logins, crow):
                ts = at.get(email_of[lid])
                if ts is not None:
                    lat.append((ts - r["due"]) / 1000.0)
            res["e2e_p50_ms"] = bl.rnd(bl.pct(lat, 50), 2)
            res["e2e_p99_ms"] = bl.rnd(bl.pct(lat, 99), 2)
            res["mails"] = len(lat)
            lat_runs.append(res)
        e2e["latency"] = {"rate": round(rate, 1), "runs": lat_runs,
                          "p50_ms": bl.median([r["e2e_p50_ms"] for r in lat_runs]),
                          "p99_ms": bl.median([r["e2e_p99_ms"] for r in lat_runs]),
                          "reply_p50_ms": bl.median([r["p50_ms"] for r in lat_runs])}
        self.details["e2e"] = e2e
        bl.log("e2e: %s flows/s; at %.0f/s p50 %s p99 %s ms" % (
            e2e["per_s"], rate, e2e["latency"]["p50_ms"],
            e2e["latency"]["p99_ms"]))

    # ---- 2b. code_submitted ----------------------------------------------------------

    def phase_submit(self):
        if not getattr(self, "codes_w", None):
            return
        if not self.codes:
            self.notes.append("login.code_submitted not measured: no codes "
                              "were delivered (end to end not available)")
            return
        runs = []
        for _ in range(self.cfg["reps"]):
            take = self.take_codes(self.cfg["submit_drain"])
            if len(take) < 50:
                break
            evs = [("login.code_submitted", {"login_id": lid, "code": code})
                   for _, lid, code in take]
            runs.append(self.codes_drain(self.codes_w, "login.code_submitted",
                                         evs, "submit-drain"))
        if not runs:
            return
        mx = bl.median([r["per_s"] for r in runs])
        self.details["code_submitted_max"] = {"runs": runs, "per_s": mx}
        bl.log("mfa-codes login.code_submitted max: %s/s" % mx)

        def mk(n):
            take = self.take_codes(n)
            if len(take) < n:
                self.notes.append("code_submitted latency run at fewer events "
                                  "than planned (%d of %d): codes ran out" % (
                                      len(take), n))
            return [("login.code_submitted", {"login_id": lid, "code": code})
                    for _, lid, code in take]
        self.details["code_submitted_latency"] = self.latency_series(
            mk, [("half", mx / 2.0), ("max", mx)], "login.code_submitted")

    def stop_workers(self):
        w = getattr(self, "codes_w", None)
        if w and w.alive():
            events = self.db.inbox("mfa-codes") - self.codes_inbox0
            self.stop_proc(w)
            self.record_rss("mfa-codes", w, events=events)
        w = getattr(self, "email_w", None)
        if w and w.alive():
            self.stop_proc(w)
            self.record_rss("mfa-email", w, events=self.db.inbox("mfa-email"))
            self.email_inbox_b = self.db.inbox("mfa-email")
        for p in list(self.active.values()):
            self.stop_proc(p)

    # ---- results.json ----------------------------------------------------------------

    def results(self):
        return make_results(self.details)


def make_results(d):
    def g(*path):
        x = d
        for k in path:
            if not isinstance(x, dict) or k not in x:
                return None
            x = x[k]
        return x

    def ratio(a, b):
        return round(a / b, 3) if a is not None and b else None

    bare_pm = g("bare", "per_message", "per_s")
    e2e = g("e2e", "per_s")
    sms = g("sms", "per_s")
    seq = g("sms", "sequential_per_s")
    rss = {w: max((r.get("peak_kib") or 0) for r in runs) or None
           for w, runs in (d.get("rss") or {}).items()}
    return {
        "bare_hop_per_s": bare_pm,
        "bare_hop_batched_per_s": g("bare", "batched", "per_s"),
        "bare_hop_p50_ms_half_load": g("bare_latency", "batched", "half", "p50_ms"),
        "bare_hop_p99_ms_half_load": g("bare_latency", "batched", "half", "p99_ms"),
        "login_reply_p50_ms_half_load": g("login_started_latency", "half", "p50_ms"),
        "login_reply_p99_ms_half_load": g("login_started_latency", "half", "p99_ms"),
        "e2e_flows_per_s": e2e,
        "e2e_ratio_to_bare": ratio(e2e, bare_pm),
        "e2e_p99_ms": g("e2e", "latency", "p99_ms"),
        "sms_per_s_150ms": sms,
        "sms_ratio_to_sequential": ratio(sms, seq),
        "instructions_per_event": instructions(d.get("instructions_per_event")),
        "rss_max_kib": rss,
    }


def instructions(ipe):
    """Per worker (a login is one event of each of mfa-codes' three types,
    so mfa-codes' figure is their mean), plus every worker:event."""
    ipe = dict(ipe or {})
    out = dict(ipe)
    by = {}
    for k, v in ipe.items():
        if v is not None:
            by.setdefault(k.split(":")[0], []).append((k, v))
    for w, kv in by.items():
        if w == "bare":
            v = dict(kv).get("bare:per_message")
        else:
            v = int(sum(x for _, x in kv) / len(kv))
        out[w] = v
    return out


def last_json(text):
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                continue
    return None


def count(values):
    out = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


def machine_info():
    info = {"cores": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            info["mem_kib"] = int(f.readline().split()[1])
        info["kernel"] = os.uname().release
        info["loadavg_start"] = open("/proc/loadavg").read().split()[:3]
        with open("/etc/debian_version") as f:
            info["debian"] = f.read().strip()
    except OSError:
        pass
    return info


def versions(ctx):
    def cmd(*argv):
        try:
            return subprocess.run(argv, capture_output=True, text=True,
                                  timeout=30).stdout.strip().splitlines()[0]
        except Exception:
            return None
    v = {"postgresql": ctx.db.scalar("SHOW server_version"),
         "rabbitmq": None,
         "librabbitmq": cmd("pkg-config", "--modversion", "librabbitmq"),
         "libpq": cmd("pkg-config", "--modversion", "libpq"),
         "libcurl": cmd("pkg-config", "--modversion", "libcurl"),
         "valgrind": cmd("valgrind", "--version"),
         "gcc": cmd("gcc", "--version"),
         "python3": cmd("/usr/bin/python3", "--version")}
    for d in os.listdir("/usr/lib/rabbitmq/lib"):
        if d.startswith("rabbitmq_server-"):
            v["rabbitmq"] = d.split("-", 1)[1]
    v["mfa"] = cmd(os.path.join(ctx.build, "bin", "mfa-codes"), "--version")
    v["fsync_setting"] = ctx.db.scalar("SHOW fsync")
    v["synchronous_commit"] = ctx.db.scalar("SHOW synchronous_commit")
    return v
