"""Plumbing for bench/run.py: servers, processes, samplers, statistics.

Run with Debian's /usr/bin/python3 (python3-pika, python3-psycopg2). Nothing
here measures by itself; run.py decides what to run and what it means.
"""
import json
import os
import re
import signal
import subprocess
import threading
import time

import pika
import psycopg2

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVERS_SH = os.path.join(REPO, "tests", "servers.sh")
HZ = os.sysconf("SC_CLK_TCK")


def log(msg):
    print("bench: %s" % msg, flush=True)


# ---- servers ---------------------------------------------------------------

class Servers:
    """tests/servers.sh under a private directory, started clean."""

    def __init__(self, d):
        self.dir = os.path.abspath(d)
        self.env = {}

    def sh(self, *args, check=True):
        return subprocess.run(["sh", SERVERS_SH, *args], cwd=REPO,
                              capture_output=True, text=True, timeout=300,
                              check=check)

    def start(self):
        self.sh("stop", self.dir, "--clean", check=False)
        r = self.sh("start", self.dir, check=False)
        if r.returncode != 0:
            raise SystemExit("bench: servers did not start:\n" + r.stderr[-3000:])
        for line in r.stdout.splitlines():
            m = re.match(r'export (\w+)=(.*)$', line)
            if m:
                self.env[m.group(1)] = m.group(2).strip('"')
        return self.env

    def stop(self, clean=True):
        self.sh("stop", self.dir, *(["--clean"] if clean else []), check=False)

    def broker_pids(self):
        pid = _readpid(os.path.join(self.dir, "rabbitmq", "rabbit.pid"))
        return [pid] + _children(pid) if pid else []

    def postgres_pids(self):
        pid = _readpid(os.path.join(self.dir, "pg", "data", "postmaster.pid"))
        return [pid] + _children(pid) if pid else []


def _readpid(path):
    try:
        with open(path) as f:
            return int(f.readline().strip())
    except (OSError, ValueError):
        return None


def _children(ppid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        if int(st[st.rindex(")") + 2:].split()[1]) == ppid:
            out.append(int(d))
    return out


# ---- CPU, fsync and memory accounting ----------------------------------------

def proc_cpu_s(pid):
    """utime+stime of a process (and its waited-for children), seconds."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
    except OSError:
        return 0.0
    v = st[st.rindex(")") + 2:].split()
    return (int(v[11]) + int(v[12]) + int(v[13]) + int(v[14])) / HZ


def all_cpu():
    """pid -> (comm, cpu seconds) for every process on the machine."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        v = st[st.rindex(")") + 2:].split()
        out[int(d)] = (st[st.index("(") + 1:st.rindex(")")],
                       (int(v[11]) + int(v[12])) / HZ)
    return out


def machine_cpu():
    """(busy, iowait, steal, irq+softirq) seconds of the whole machine so
    far; steal is CPU the hypervisor gave to other guests."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = v[:8]
    return ((user + nice + system + irq + softirq + steal) / HZ, iowait / HZ,
            steal / HZ, (irq + softirq) / HZ)


def ctx_switches(pid):
    """Voluntary + involuntary context switches of a process so far."""
    n = 0
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if "ctxt_switches" in line:
                    n += int(line.split()[1])
    except OSError:
        pass
    return n


def rss_kib(pid, split=None):
    """(VmRSS, VmHWM) in KiB, or (None, None) once the process is gone.
    split (a dict) receives RssAnon / RssFile: heap versus the mapped
    pages of the program and its shared libraries."""
    rss = hwm = None
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1])
                elif split is not None and line.startswith(("RssAnon:",
                                                            "RssFile:")):
                    split[line.split(":")[0]] = int(line.split()[1])
    except OSError:
        pass
    return rss, hwm


class Meter:
    """CPU by component, machine CPU and PostgreSQL WAL syncs over a span.

    groups: name -> callable returning the pids to count now (looked up
    at start and at stop; processes that come and go in between, such as
    short PostgreSQL backends, are missed)."""

    def __init__(self, groups, db):
        self.groups = groups
        self.db = db

    def _snap(self):
        cpu, csw = {}, {}
        for name, pids in self.groups.items():
            cpu[name] = {p: proc_cpu_s(p) for p in pids()}
            if name == "ours":
                csw = {p: ctx_switches(p) for p in cpu[name]}
        return {"t": time.monotonic(), "cpu": cpu, "csw": csw,
                "machine": machine_cpu(),
                "wal": self.db.wal(), "all": all_cpu(),
                "stmts": self.db.statements()}

    def start(self):
        self.a = self._snap()
        return self

    def stop(self):
        b = self._snap()
        a = self.a
        wall = b["t"] - a["t"]
        out = {"wall_s": round(wall, 3), "cores": {}}
        for name in self.groups:
            used = 0.0
            for p, v in b["cpu"][name].items():
                used += v - a["cpu"][name].get(p, 0.0)
            out["cores"][name] = round(used / wall, 3) if wall > 0 else 0
        busy = b["machine"][0] - a["machine"][0]
        iow = b["machine"][1] - a["machine"][1]
        out["cores"]["machine"] = round(busy / wall, 3) if wall > 0 else 0
        out["iowait_cores"] = round(iow / wall, 3) if wall > 0 else 0
        if wall > 0:
            out["steal_cores"] = round((b["machine"][2] - a["machine"][2]) /
                                       wall, 3)
            out["irq_cores"] = round((b["machine"][3] - a["machine"][3]) /
                                     wall, 3)
        out["ours_ctx_switches"] = sum(v - a["csw"].get(p, 0)
                                       for p, v in b["csw"].items())
        ours = sum(v for k, v in out["cores"].items() if k != "machine")
        out["cores"]["other"] = round(max(0.0, out["cores"]["machine"] - ours), 3)
        # Who the others were: other engineers' tests on this machine, and
        # kernel threads doing our network work (softirq).
        mine = set()
        for snap in (a, b):
            for pids in snap["cpu"].values():
                mine.update(pids)
        by = {}
        for pid, (comm, v) in b["all"].items():
            if pid in mine or pid not in a["all"]:
                continue
            d = v - a["all"][pid][1]
            if d > 0:
                by[comm] = by.get(comm, 0.0) + d
        out["others_top"] = [[k, round(v / wall, 2)] for k, v in sorted(
            by.items(), key=lambda kv: -kv[1])[:4] if v / wall >= 0.02]
        if a["stmts"] and b["stmts"]:
            calls = b["stmts"][0] - a["stmts"][0]
            out["pg_statements"] = calls
            out["pg_commits"] = b["stmts"][1] - a["stmts"][1]
            out["pg_exec_busy"] = round((b["stmts"][2] - a["stmts"][2]) /
                                        1000.0 / wall, 3) if wall > 0 else 0
        if a["wal"] and b["wal"]:
            syncs = b["wal"][0] - a["wal"][0]
            out["wal_syncs"] = syncs
            out["wal_sync_busy"] = round((b["wal"][1] - a["wal"][1]) / 1000.0
                                         / wall, 3) if wall > 0 else 0
            out["wal_sync_ms_avg"] = round((b["wal"][1] - a["wal"][1]) / syncs,
                                           3) if syncs else None
        return out


class RssSampler(threading.Thread):
    """Samples a process's RSS every `every` seconds until it exits."""

    def __init__(self, pid, every=0.5):
        super().__init__(daemon=True)
        self.pid = pid
        self.every = every
        self.samples = []   # (monotonic t, rss KiB)
        self.hwm = 0
        self.split = {}        # RssAnon / RssFile at the largest RSS seen
        self.running = True
        self.start()

    def run(self):
        top = 0
        while self.running:
            split = {}
            rss, hwm = rss_kib(self.pid, split)
            if rss is None:
                break
            self.samples.append((time.monotonic(), rss))
            self.hwm = max(self.hwm, hwm or 0)
            if rss >= top:
                top, self.split = rss, split
            time.sleep(self.every)

    def summary(self):
        s = [r for _, r in self.samples]
        if not s:
            return {"peak_kib": self.hwm or None}
        n = len(s)
        first = s[max(1, n // 10):max(2, n // 2)] or s
        second = s[n // 2:] or s
        return {"peak_kib": max(self.hwm, max(s)), "samples": n,
                "anon_kib": self.split.get("RssAnon"),
                "file_kib": self.split.get("RssFile"),
                "rss_early_kib": max(first), "rss_late_kib": max(second),
                "growth_kib": max(second) - max(first)}


# ---- processes ----------------------------------------------------------------

class Proc:
    """A worker or tool process with its log file."""

    def __init__(self, name, argv, env, logdir, rss=False):
        self.name = name
        self.logpath = os.path.join(logdir, "%s-%d.log" % (
            name, int(time.time() * 1000) % 10 ** 8))
        self.logf = open(self.logpath, "ab")
        self.p = subprocess.Popen(argv, cwd=REPO, env=env, stdout=self.logf,
                                  stderr=subprocess.STDOUT)
        self.pid = self.p.pid
        self.rss = RssSampler(self.pid) if rss else None

    def logs(self):
        with open(self.logpath, "rb") as f:
            return f.read().decode(errors="replace")

    def wait_log(self, text, timeout=120):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if text in self.logs():
                return
            if self.p.poll() is not None:
                raise RuntimeError("%s exited %s:\n%s" % (
                    self.name, self.p.returncode, self.logs()[-2000:]))
            time.sleep(0.05)
        raise RuntimeError("%s: no %r in its log" % (self.name, text))

    def pause(self):
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self):
        os.kill(self.pid, signal.SIGCONT)

    def alive(self):
        return self.p.poll() is None

    def stop(self, timeout=60):
        if self.p.poll() is None:
            os.kill(self.pid, signal.SIGCONT)
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        if self.rss:
            self.rss.running = False
        self.logf.close()
        return self.p.returncode


def run_json(argv, env, timeout=900):
    """Runs a tool that prints one JSON line on stdout; returns it."""
    r = subprocess.run(argv, cwd=REPO, env=env, capture_output=True,
                       text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (
            os.path.basename(argv[0]), r.returncode, r.stderr[-2000:]))
    return json.loads(r.stdout.strip().splitlines()[-1])


class Sink:
    """build/bench/load sink on a queue, started before the work."""

    def __init__(self, tool, queue, count, out, env, idle=30):
        self.out = out
        self.p = subprocess.Popen(
            [tool, "sink", queue, "--count", str(count), "--out", out,
             "--idle", str(idle)], cwd=REPO, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.p.stderr.readline()
        if "ready" not in line:
            raise RuntimeError("sink did not start: %s%s" % (
                line, self.p.stderr.read()[-2000:]))

    def wait(self, timeout=1200):
        out, err = self.p.communicate(timeout=timeout)
        rows = []
        with open(self.out) as f:
            for line in f:
                v = line.rstrip("\n").split("\t")
                if len(v) >= 3:
                    rows.append((int(v[0]), v[1], v[2]))
        return rows, err.strip()


# ---- the databases -------------------------------------------------------------

class Db:
    def __init__(self, dsn):
        self.dsn = dsn
        self.c = psycopg2.connect(dsn)
        self.c.autocommit = True

    def rows(self, sql, *params):
        with self.c.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else []

    def scalar(self, sql, *params):
        r = self.rows(sql, *params)
        return r[0][0] if r else None

    def wal(self):
        try:
            r = self.rows("SELECT wal_sync, wal_sync_time FROM pg_stat_wal")
            return (int(r[0][0]), float(r[0][1]))
        except psycopg2.Error:
            return None

    def statements(self):
        """(statements, COMMITs, ms executing) of the workers and bare so
        far, from pg_stat_statements (the driver's own are left out)."""
        try:
            r = self.rows(
                "SELECT coalesce(sum(calls), 0), coalesce(sum(calls) FILTER "
                "(WHERE upper(query) = 'COMMIT'), 0), "
                "coalesce(sum(total_exec_time), 0) FROM pg_stat_statements s "
                "JOIN pg_roles r ON r.oid = s.userid "
                "WHERE r.rolname IN ('mfa_worker', 'bench_bare')")
            return (int(r[0][0]), int(r[0][1]), float(r[0][2]))
        except psycopg2.Error:
            return None

    def inbox(self, consumer):
        return self.scalar("SELECT count(*) FROM mfa.inbox WHERE consumer = %s",
                           consumer)


class Broker:
    """A pika connection for queue chores (purge, depth). Heartbeats off
    (the driver calls it only now and then) and re-made when lost."""

    def __init__(self, url):
        self.url = url
        self.conn = None
        self._connect()

    def _connect(self):
        p = pika.URLParameters(self.url)
        p.heartbeat = 0
        self.conn = pika.BlockingConnection(p)
        self.ch = self.conn.channel()

    def _do(self, fn):
        for attempt in (1, 2):
            try:
                if self.ch is None or not self.ch.is_open:
                    if self.conn is None or not self.conn.is_open:
                        self._connect()
                    else:
                        self.ch = self.conn.channel()
                return fn()
            except (pika.exceptions.AMQPError, OSError):
                if attempt == 2:
                    raise
                self.close()
                self.conn = self.ch = None

    def purge(self, q):
        """Empties q; a queue that does not exist yet (bench.replies) is
        declared, one of the workers' is never redeclared (its arguments)."""
        def go():
            try:
                self.ch.queue_purge(q)
            except pika.exceptions.ChannelClosedByBroker as e:
                if e.reply_code != 404:
                    raise
                self.ch = self.conn.channel()
                self.ch.queue_declare(q, durable=True)
        self._do(go)

    def depth(self, q):
        return self._do(lambda: self.ch.queue_declare(
            q, passive=True).method.message_count)

    def close(self):
        try:
            if self.conn is not None:
                self.conn.close()
        except Exception:
            pass


def wait_until(pred, timeout, every=0.2, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(every)
    raise RuntimeError("timed out waiting for %s" % what)


# ---- statistics ------------------------------------------------------------------

def pct(values, p):
    if not values:
        return None
    s = sorted(values)
    k = min(len(s) - 1, max(0, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


def median(values):
    v = [x for x in values if x is not None]
    if not v:
        return None
    v.sort()
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2.0


def steady_rate(ts_us):
    """Messages/s between the 5th and 95th percentile arrival: the steady
    part of a drain, without the start (connect, first batch) and the
    tail."""
    t = sorted(ts_us)
    n = len(t)
    if n < 2:
        return None
    a, b = (int(0.05 * n), int(0.95 * n) - 1) if n >= 40 else (0, n - 1)
    span = (t[b] - t[a]) / 1e6
    return (b - a) / span if span > 0 else None


def rnd(x, nd=1):
    return None if x is None else round(x, nd)
