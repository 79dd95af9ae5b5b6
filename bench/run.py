#!/usr/bin/python3
"""`make bench`: how fast Portal MFA is, against the limit of the same machine.

Starts its own servers (tests/servers.sh start var/bench-servers ... stop),
runs every phase below in one go, prints a table and writes
bench/results.json (the figures) and bench/REPORT.md (figures, machine,
versions, command lines, and what bounds each figure). Raw data and logs
go to var/bench/.

  1. the limit: bench/bare.c (consume -> INSERT committed -> publish
     persistent with confirm -> ack), per-message and batched;
  2. interactive latency of mfa-codes (login.started, login.code_submitted)
     at half the measured maximum and at the maximum, through the producer
     library (bench/client.c), and the bare pipeline's at the same rates;
  3. end to end: login.code_requested -> email accepted by the SMTP server;
  4. dispatch concurrency: mfa-sms against a Twilio fake answering in
     150 ms, beside a one-at-a-time client;
  5. cost: instructions per event (callgrind), and peak RSS per worker
     over BENCH_EVENTS events (the soak: every worker at once, each fed
     BENCH_EVENTS events of its own, so the 2 cores are used while one
     worker waits on a round trip).

Environment: BENCH_QUICK=1 (a short run, for development), BENCH_EVENTS=N
(the soak size, default 100000), BENCH_SOAK_S=N (the soak's time limit,
default 300), BENCH_REPS=N (repeats per figure, default 3; 1 in quick
mode), BENCH_KEEP_SERVERS=1 (leave var/bench-servers up).
Every speed target is a ratio to a figure of the same run: the machine is
shared and noisy, absolute numbers move from run to run.
"""
import argparse
import json
import os
import signal
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import benchlib as bl  # noqa: E402
import phases  # noqa: E402
import report  # noqa: E402


def config():
    quick = os.environ.get("BENCH_QUICK") == "1"
    events = int(os.environ.get("BENCH_EVENTS", 1000 if quick else 100000))
    reps = int(os.environ.get("BENCH_REPS", 1 if quick else 3))
    return {
        "quick": quick,
        "events": events,
        # users made by mfa-contact-sync at the start (each gets a few
        # logins; the soak promotes BENCH_EVENTS more contacts)
        "users": min(events, 1000 if quick else 20000),
        "reps": max(1, reps),
        # messages per throughput drain (per-message bare is ~10x slower);
        # mfa-codes' login.started drains are BENCH_EVENTS in all (soak)
        "drain": 1500 if quick else 10000,
        "drain_per_message": 400 if quick else 2000,
        "e2e_drain": 500 if quick else 3000,
        "submit_drain": 300 if quick else 1500,
        # seconds per open-loop latency run
        "latency_s": 3 if quick else 6,
        "sms_n": 300 if quick else 2000,
        # the RSS soak stops after this many seconds even short of
        # BENCH_EVENTS (a 2-core machine shared with other work)
        "soak_s": int(os.environ.get("BENCH_SOAK_S", 25 if quick else 300)),
        "cg_events": 30 if quick else 200,
        "cg_warmup": 10 if quick else 30,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--servers", default="var/bench-servers")
    ap.add_argument("--only", default="",
                    help="comma-separated phases to run (development)")
    ap.add_argument("--report-only", action="store_true",
                    help="rewrite results.json and REPORT.md from "
                         "var/bench/details.json (after a change to report.py)")
    a = ap.parse_args()
    if a.report_only:
        return report_only()
    cfg = config()
    t0 = time.time()
    ctx = phases.Context(cfg, os.path.join(bl.REPO, a.build),
                         os.path.join(bl.REPO, a.servers))
    only = set(filter(None, a.only.split(",")))
    steps = [("setup", ctx.setup), ("users", ctx.phase_users),
             ("bare", ctx.phase_bare), ("codes_max", ctx.phase_codes_max),
             ("bare_latency", ctx.phase_bare_latency),
             ("codes_latency", ctx.phase_codes_latency),
             ("e2e", ctx.phase_e2e), ("submit", ctx.phase_submit),
             ("stop_workers", ctx.stop_workers),
             ("email_alone", ctx.phase_email_alone), ("sms", ctx.phase_sms),
             ("soak", ctx.phase_soak), ("cost", ctx.phase_cost)]
    failed = []

    def on_signal(sig, frame):
        raise KeyboardInterrupt("signal %d" % sig)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        for name, fn in steps:
            if only and name not in only and name not in (
                    "setup", "users", "stop_workers"):
                continue
            ts = time.time()
            bl.log("---- %s" % name)
            try:
                fn()
            except Exception as e:  # one phase failing must not lose the rest
                if name == "setup":
                    raise
                failed.append("%s: %s" % (name, e))
                ctx.notes.append("phase %s failed: %s" % (name, e))
                traceback.print_exc()
            ctx.durations[name] = round(time.time() - ts, 1)
            save_details(ctx)
    except KeyboardInterrupt as e:
        failed.append("interrupted (%s)" % e)
        ctx.notes.append("the run was interrupted (%s): later phases are "
                         "missing" % e)
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        ctx.teardown(keep=os.environ.get("BENCH_KEEP_SERVERS") == "1")
    ctx.details["total_s"] = round(time.time() - t0, 1)
    ctx.details["finished_at"] = time.strftime("%Y-%m-%d %H:%M UTC",
                                               time.gmtime())
    results = ctx.results()
    with open(os.path.join(bl.REPO, "bench", "results.json"), "w") as f:
        json.dump(results, f, indent=2, sort_keys=True)
        f.write("\n")
    save_details(ctx)
    text = report.render(results, ctx.details, cfg)
    with open(os.path.join(bl.REPO, "bench", "REPORT.md"), "w") as f:
        f.write(text)
    print(report.table(results, ctx.details))
    bl.log("done in %.0f s; bench/results.json, bench/REPORT.md, raw data "
           "in %s" % (time.time() - t0, os.path.relpath(ctx.out, bl.REPO)))
    if failed:
        bl.log("phases that failed: %s" % "; ".join(failed))
        return 1
    return 0


def save_details(ctx):
    """After every phase, so that an interrupted run keeps its figures
    (bench/run.py --report-only writes the report from them)."""
    if not os.path.isdir(ctx.out):
        return
    tmp = os.path.join(ctx.out, "details.json.tmp")
    with open(tmp, "w") as f:
        json.dump(ctx.details, f, indent=1, sort_keys=True, default=str)
    os.replace(tmp, os.path.join(ctx.out, "details.json"))


def report_only():
    import cost
    path = os.path.join(bl.REPO, "var", "bench", "details.json")
    with open(path) as f:
        details = json.load(f)
    for label, c in (details.get("cost") or {}).items():
        dump = os.path.join(bl.REPO, c.get("dump", ""))
        if c.get("events") and os.path.exists(dump):
            c["calls_per_event"] = {k: round(v / float(c["events"]), 2) for k, v
                                    in sorted(cost.cg_calls(dump).items())}
    with open(path, "w") as f:
        json.dump(details, f, indent=1, sort_keys=True, default=str)
    results = phases.make_results(details)
    with open(os.path.join(bl.REPO, "bench", "results.json"), "w") as f:
        json.dump(results, f, indent=2, sort_keys=True)
        f.write("\n")
    with open(os.path.join(bl.REPO, "bench", "REPORT.md"), "w") as f:
        f.write(report.render(results, details, details["config"]))
    print(report.table(results, details))
    return 0


if __name__ == "__main__":
    sys.exit(main())
