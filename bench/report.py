"""bench/REPORT.md and the console table, from one run's figures.

render() writes the report: the figures against their targets (each a
ratio to a figure of the same run), the machine and versions, the command
lines, and for every figure what bounded it, from the CPU and WAL-sync
accounting taken while it was measured (benchlib.Meter).
"""
import time

MIB = 1024


def fmt(x, nd=1):
    if x is None:
        return "n/a"
    if isinstance(x, float):
        if nd == 1 and abs(x) < 10:
            nd = 2
        return ("%%.%df" % nd) % x
    return str(x)


def bound(met, ours="our worker", events=None):
    """What limited a span, from its Meter figures, in one sentence."""
    if not met:
        return "not measured"
    c = met.get("cores", {})
    others = ", ".join("%s %.2f" % (k, v) for k, v in met.get("others_top") or [])
    parts = "broker %.2f, PostgreSQL %.2f, %s %.2f, load tools and driver " \
            "%.2f, everything else %.2f (of which hypervisor steal %.2f, " \
            "interrupts %.2f; the largest other long-lived processes: %s; the " \
            "rest short-lived processes such as other engineers' compilers " \
            "and tests)" % (
                c.get("broker", 0), c.get("postgres", 0), ours, c.get("ours", 0),
                c.get("load", 0), c.get("other", 0), met.get("steal_cores", 0),
                met.get("irq_cores", 0), others or "none")
    machine = c.get("machine", 0)
    wal = met.get("wal_sync_busy")
    why = []
    if machine >= 1.7:
        top = max(("broker", "postgres", "ours", "other"),
                  key=lambda k: c.get(k, 0))
        name = {"broker": "broker CPU", "postgres": "PostgreSQL CPU",
                "ours": "our CPU", "other": "everything else on the machine "
                "(noise)"}[top]
        why.append("CPU: the machine was %.2f of 2 cores busy, the largest "
                   "share %s" % (machine, name))
    if wal is not None and wal >= 0.4:
        why.append("fsync: PostgreSQL spent %.0f%% of the time in WAL syncs "
                   "(%s syncs, %s ms each)" % (100 * wal, met.get("wal_syncs"),
                                               met.get("wal_sync_ms_avg")))
    if not why:
        why.append("neither CPU (%.2f of 2 cores busy) nor WAL fsync (%s of "
                   "the time) saturated: round trips and waits" % (
                       machine, "n/a" if wal is None else "%.0f%%" % (100 * wal)))
    extra = ""
    if wal is not None:
        extra += " WAL syncs busy %.0f%% of the time (%s syncs, %s ms each)." % (
            100 * wal, met.get("wal_syncs"), met.get("wal_sync_ms_avg"))
    if events and met.get("pg_statements"):
        extra += " PostgreSQL: %.1f statements per event" % (
            met["pg_statements"] / float(events))
        if met.get("pg_commits"):
            extra += ", %.1f events per COMMIT" % (
                events / float(met["pg_commits"]))
        extra += ", executing statements %.0f%% of the time." % (
            100 * (met.get("pg_exec_busy") or 0))
    if events and met.get("ours_ctx_switches"):
        extra += " %s: %.1f context switches per event." % (
            ours, met["ours_ctx_switches"] / float(events))
    return "%s. Cores used: %s; iowait %.2f.%s" % (
        "; ".join(why), parts, met.get("iowait_cores", 0), extra)


def verdict(ok):
    return "n/a" if ok is None else ("**met**" if ok else "**missed**")


def le(a, b, k=1.0):
    return None if a is None or b is None else a <= k * b


def ge(a, b, k=1.0):
    return None if a is None or b is None else a >= k * b


def g(d, *path):
    for k in path:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def targets(r, d):
    """(figure, value, target, verdict) rows."""
    rows = []
    bare = r["bare_hop_per_s"]
    rows.append(("end-to-end flows/s vs per-message bare pipeline",
                 "%s vs %s (ratio %s)" % (fmt(r["e2e_flows_per_s"]), fmt(bare),
                                           fmt(r["e2e_ratio_to_bare"], 2)),
                 ">= 0.8 x bare", verdict(ge(r["e2e_ratio_to_bare"], 0.8))))
    for p in ("p50", "p99"):
        mine = r["login_reply_%s_ms_half_load" % p]
        ref = r["bare_hop_%s_ms_half_load" % p]
        rows.append(("login.started reply %s at half load (ms)" % p,
                     "%s vs bare %s" % (fmt(mine), fmt(ref)),
                     "<= 2 x bare", verdict(le(mine, ref, 2.0))))
    rows.append(("mfa-sms msgs/s, 150 ms fake, vs one-at-a-time client",
                 "%s vs %s (ratio %s)" % (
                     fmt(r["sms_per_s_150ms"]), fmt(g(d, "sms", "sequential_per_s"), 2),
                     fmt(r["sms_ratio_to_sequential"])),
                 ">= 45 x", verdict(ge(r["sms_ratio_to_sequential"], 45))))
    for w, kib in sorted((r.get("rss_max_kib") or {}).items()):
        # Flatness from the process that handled the most events (the
        # soak): a short process's warm-up (pools filling) is not growth.
        longest = max(d["rss"][w], key=lambda x: x.get("events") or 0)
        growth = longest.get("growth_kib") or 0
        events = longest.get("events") or 0
        flat = growth <= 1024
        rows.append(("%s peak RSS (KiB); growth over %s events" % (w, events),
                     "%s (growth %s KiB first->second half)" % (kib, growth),
                     "<= 16384, flat", verdict(kib is not None and
                                               kib <= 16 * MIB and flat)))
    return rows


def render(r, d, cfg):
    L = []
    w = L.append
    w("# Portal MFA — benchmark report")
    w("")
    w("Generated by `make bench` (bench/run.py) on %s, %s mode, BENCH_EVENTS=%d, "
      "%d repeat(s) per figure (medians quoted), %s s in all." % (
          d.get("finished_at") or time.strftime("%Y-%m-%d %H:%M UTC",
                                                time.gmtime()),
          "quick" if cfg["quick"] else "full", cfg["events"], cfg["reps"],
          d.get("total_s")))
    w("")
    w("**Provisional.** The machine is shared (other engineers run their test "
      "suites on the same 2 cores while this runs), so absolute figures move "
      "from run to run; every target is a ratio to a figure measured in the "
      "same run, and each figure below says what bounded it.")
    w("")
    w("## Targets")
    w("")
    w("| figure | measured | target | verdict |")
    w("| --- | --- | --- | --- |")
    for row in targets(r, d):
        w("| %s |" % " | ".join(row))
    w("")
    section_why(w, r, d)
    w("## Figures (bench/results.json)")
    w("")
    w("| key | value |")
    w("| --- | --- |")
    for k in sorted(r):
        if isinstance(r[k], dict):
            for kk in sorted(r[k]):
                w("| %s.%s | %s |" % (k, kk, fmt(r[k][kk])))
        else:
            w("| %s | %s |" % (k, fmt(r[k])))
    w("")
    section_limit(w, d)
    section_latency(w, d)
    section_e2e(w, d)
    section_sms(w, d)
    section_cost(w, d)
    section_load(w, d)
    w("## Machine and versions")
    w("")
    for k, v in sorted((d.get("machine") or {}).items()):
        w("- %s: %s" % (k, v))
    for k, v in sorted((d.get("versions") or {}).items()):
        w("- %s: %s" % (k, v))
    w("- available: %s" % ", ".join("%s %s" % (k, "yes" if v else "NOT AVAILABLE")
                                    for k, v in (d.get("available") or {}).items()))
    w("")
    w("## Command lines")
    w("")
    w("- the run: `make bench` = `/usr/bin/python3 bench/run.py --build build` "
      "(BENCH_QUICK=1, BENCH_EVENTS=N, BENCH_REPS=N)")
    w("- servers: `sh tests/servers.sh start var/bench-servers` … `stop "
      "var/bench-servers --clean` (PostgreSQL fsync=on, synchronous_commit=on; "
      "track_wal_io_timing=on for the fsync evidence)")
    w("- SMTP server: `build/bench/smtp_sink --out var/bench/raw/smtp-accepted.tsv`")
    for k, v in sorted((d.get("commands") or {}).items()):
        w("- %s: `%s`" % (k, v))
    w("- workers run with MFA_CODES_TTL_SECONDS=600 (codes of one phase are "
      "submitted in a later one), MFA_AMQP_HEARTBEAT_SECONDS=60, everything "
      "else config/mfa.yaml's defaults (prefetch 100, batch 50, smtp "
      "concurrency 32, sms concurrency 128, log level info)")
    w("")
    if d.get("notes"):
        w("## Notes")
        w("")
        for n in d["notes"]:
            w("- %s" % n)
        w("")
    order = ["setup", "users", "bare", "codes_max", "bare_latency",
             "codes_latency", "e2e", "submit", "stop_workers", "email_alone",
             "sms", "soak", "cost"]
    dur = d.get("durations") or {}
    w("Phase durations (s): %s" % ", ".join(
        "%s %s" % (k, dur[k]) for k in sorted(
            dur, key=lambda k: order.index(k) if k in order else 99)))
    w("")
    return "\n".join(L)


def per_event(met, key, events):
    if not met or not events or met.get(key) is None:
        return None
    return met[key] / float(events)


def section_why(w0, r, d):
    """What bounds each missed target, in numbers from this run."""
    said = []

    def w(line):
        said.append(line)
        w0(line)
    w0("## Why, where a target is missed")
    w0("")
    bare = g(d, "bare", "per_message", "runs")
    bare_m = bare[-1].get("meter") if bare else None
    e2e = g(d, "e2e", "runs")
    if r.get("e2e_ratio_to_bare") is not None and r["e2e_ratio_to_bare"] < 0.8:
        m = e2e[-1].get("meter") or {}
        n = e2e[-1].get("n")
        st = per_event(m, "pg_statements", n)
        ea = g(d, "email_alone", "per_s")
        cs = bl_med([x.get("codes_side_per_s") for x in e2e])
        w("- **End to end %s flows/s = %s x the bare pipeline.** A flow is two "
          "hops (mfa-codes, then mfa-email), each a full runtime transaction, "
          "and costs %s SQL statements against the bare pipeline's 1 per "
          "message; mfa-codes answered the requests at %s/s meanwhile, and "
          "mfa-email by itself manages %s emails/s. The slower hop sets the "
          "rate. CPU while draining: PostgreSQL %s, our workers %s, broker %s, "
          "everything else on the machine %s cores of 2. Bound: round "
          "trips, one after another: mfa-codes makes %s SQL round trips per "
          "login.code_requested and mfa-email %s per job (section 5), and "
          "mfa-email's one loop waits out each of them (and each publisher "
          "confirm) while its SMTP sessions wait for their next turn; then "
          "our CPU; the instructions per event below say where it "
          "goes." % (
              fmt(r["e2e_flows_per_s"]), fmt(r["e2e_ratio_to_bare"], 2),
              fmt(st), fmt(cs), fmt(ea),
              fmt(g(m, "cores", "postgres"), 2), fmt(g(m, "cores", "ours"), 2),
              fmt(g(m, "cores", "broker"), 2), fmt(g(m, "cores", "other"), 2),
              fmt(g(d, "cost", "mfa-codes:login.code_requested",
                    "calls_per_event", "pq_exec")),
              fmt(g(d, "cost", "mfa-email:dispatch.code", "calls_per_event",
                    "pq_exec"))))
    half = g(d, "login_started_latency", "half", "runs")
    bh = g(d, "bare_latency", "batched", "half", "runs")
    lp50, lp99 = r.get("login_reply_p50_ms_half_load"), r.get(
        "login_reply_p99_ms_half_load")
    bp50, bp99 = r.get("bare_hop_p50_ms_half_load"), r.get(
        "bare_hop_p99_ms_half_load")
    if half and bh and not (le(lp50, bp50, 2) and le(lp99, bp99, 2)):
        m, n = half[-1].get("meter") or {}, half[-1].get("n")
        bm, bn = bh[-1].get("meter") or {}, bh[-1].get("n")
        w("- **login.started latency at half load (p50 %s / p99 %s ms vs the "
          "bare pipeline's %s / %s ms).** mfa-codes issues %s SQL statements "
          "per event (bare: %s) and has %s context switches per event (bare: "
          "%s): every statement is a round trip to PostgreSQL, and each wake-up "
          "waits for a core on a machine where everything else took %s of 2 "
          "cores. The runtime runs what has arrived as one batch and one "
          "COMMIT (%s events per COMMIT at this rate), so an event waits for "
          "its whole batch: latency grows with the batch, and the batch with "
          "the latency. The worker's own CPU was %s cores, PostgreSQL's %s: "
          "the bound is round trips under CPU contention, not fsync (WAL "
          "syncs busy %s%% of the time)." % (
              fmt(lp50), fmt(lp99), fmt(bp50), fmt(bp99),
              fmt(per_event(m, "pg_statements", n)),
              fmt(per_event(bm, "pg_statements", bn)),
              fmt(per_event(m, "ours_ctx_switches", n)),
              fmt(per_event(bm, "ours_ctx_switches", bn)),
              fmt(g(m, "cores", "other"), 2),
              fmt(n / float(m["pg_commits"]) if m.get("pg_commits") else None),
              fmt(g(m, "cores", "ours"), 2), fmt(g(m, "cores", "postgres"), 2),
              fmt(100 * (m.get("wal_sync_busy") or 0), 0)))
    s = d.get("sms") or {}
    if s.get("available") and r.get("sms_ratio_to_sequential") is not None \
            and r["sms_ratio_to_sequential"] < 45:
        seq = s.get("sequential_per_s") or 0
        conc = int(str(s.get("concurrency") or 128).split()[0])
        w("- **mfa-sms %s msgs/s = %s x one-at-a-time (%s/s).** With %s ms per "
          "answer, N requests in flight give at most N / %.3f s; sms.concurrency "
          "is %s, a ceiling of %.0f/s = %.0f x. 45 x needs 45 or more in "
          "flight. Below the ceiling: the fake (Python, a thread per "
          "connection) and the per-job database work (%s statements per "
          "message), on a machine where everything else took %s cores." % (
              fmt(r["sms_per_s_150ms"]), fmt(r["sms_ratio_to_sequential"]),
              fmt(seq, 2), s["delay_ms"], s["delay_ms"] / 1000.0,
              s.get("concurrency"), conc / (s["delay_ms"] / 1000.0),
              conc / (s["delay_ms"] / 1000.0) / seq if seq else 0,
              fmt(per_event(s["runs"][-1].get("meter"), "pg_statements",
                            s["runs"][-1].get("n"))),
              fmt(g(s["runs"][-1], "meter", "cores", "other"), 2)))
    over = []
    for wk, runs in sorted((d.get("rss") or {}).items()):
        top = max(runs, key=lambda x: x.get("peak_kib") or 0)
        if (top.get("peak_kib") or 0) > 16 * MIB:
            over.append("%s %s KiB (heap %s, mapped files %s)" % (
                wk, top["peak_kib"], top.get("anon_kib"), top.get("file_kib")))
    if over:
        w("- **RSS over 16 MiB:** %s. The heap stays small and flat; what "
          "exceeds the budget is the resident part of the program and its "
          "shared libraries (libphonenumber with ICU, libstdc++, libcurl with "
          "its TLS stack), pages shared with every other process that maps "
          "them. Growth over the run is in the table below." % "; ".join(over))
    if not said:
        w0("Every target is met in this run; section 5's round trips and "
           "instructions per event say where the time goes.")
    w0("")


def bl_med(values):
    v = sorted(x for x in values if x is not None)
    if not v:
        return None
    return v[len(v) // 2]


def runs_line(runs, key="per_s"):
    return ", ".join(fmt(x.get(key)) for x in runs or [])


def section_limit(w, d):
    w("## 1. The limit: the bare pipeline")
    w("")
    w("bench/bare.c over the same RabbitMQ and PostgreSQL, no business "
      "logic: consume → INSERT one row, committed → publish one persistent "
      "message with a confirm → ack. Drained from a preloaded queue (the "
      "same login.started events mfa-codes gets), rate over the 5th–95th "
      "percentile of the replies.")
    w("")
    for mode in ("per_message", "batched"):
        b = g(d, "bare", mode)
        if not b:
            continue
        last = b["runs"][-1]
        st = last.get("bare") or {}
        w("- **%s**: %s msg/s (runs: %s). Bounded by: %s" % (
            mode.replace("_", "-"), fmt(b["per_s"]), runs_line(b["runs"]),
            bound(last.get("meter"), "bare", last.get("n"))))
        if st.get("messages"):
            w("  Inside bare (last run): %.2f ms SQL incl. COMMIT and %.2f ms "
              "confirm wait per %s, %d messages in %d transactions, %.0f µs "
              "of its own CPU per message." % (
                  1000 * st["sql_s"] / st["batches"],
                  1000 * st["confirm_s"] / st["batches"],
                  "message" if mode == "per_message" else "batch",
                  st["messages"], st["batches"],
                  1e6 * st["cpu_s"] / st["messages"]))
    cs = d.get("contact_sync")
    if cs:
        w("- for scale, mfa-contact-sync created the %d users at %s events/s "
          "(contact.promoted, drained). Bounded by: %s" % (
              cs["events"], fmt(cs["per_s"]),
              bound(cs.get("meter"), "mfa-contact-sync", cs["events"])))
    w("")


def lat_table(w, title, series):
    if not series:
        return
    w("| %s | rate/s | p50 ms | p95 ms | p99 ms | runs (p99) |" % title)
    w("| --- | --- | --- | --- | --- | --- |")
    for label in ("half", "max"):
        s = series.get(label)
        if s:
            w("| %s | %s | %s | %s | %s | %s |" % (
                label, fmt(s["rate"]), fmt(s["p50_ms"], 2), fmt(s["p95_ms"], 2),
                fmt(s["p99_ms"], 2), runs_line(s["runs"], "p99_ms")))
    w("")


def section_latency(w, d):
    w("## 2. Interactive latency")
    w("")
    w("Open loop through the producer library (bench/client.c: "
      "mfa_producer_call from a pool of threads, one connection each; an "
      "event's latency counts from when it was due, so client-side queueing "
      "is included, not hidden). Rates are half of and equal to the "
      "measured maximum for the event type; the bare pipeline (batched: the "
      "runtime's shape) gets the same login.started events at the same rates. "
      "For login.started the maximum is what callers get: the same client in "
      "closed loop (128 callers, each sending its next event when its reply "
      "is in), replies/s; a drain of a preloaded queue (below it) measures "
      "mfa-codes alone and leaves out the callers' side of the broker.")
    w("")
    mx = d.get("login_started_max")
    dr = d.get("login_started_drain")
    if mx:
        w("login.started maximum, callers' side: %s/s (runs: %s). Bounded by: "
          "%s" % (fmt(mx["per_s"]), runs_line(mx["runs"]),
                  bound(mx["runs"][-1].get("meter"), "mfa-codes",
                        mx["runs"][-1].get("n"))))
        w("")
    if dr:
        w("mfa-codes alone, draining a preloaded queue: %s/s (runs: %s). "
          "Bounded by: %s" % (
              fmt(dr["per_s"]), runs_line(dr["runs"]),
              bound(dr["runs"][-1].get("meter"), "mfa-codes",
                    dr["runs"][-1].get("n"))))
        w("")
    lat_table(w, "login.started → reply", d.get("login_started_latency"))
    for mode in ("batched", "per_message"):
        lat_table(w, "bare %s" % mode.replace("_", "-"),
                  g(d, "bare_latency", mode))
    sm = d.get("code_submitted_max")
    if sm:
        w("mfa-codes login.code_submitted maximum: %s/s (runs: %s; replies "
          "%s). Bounded by: %s" % (
              fmt(sm["per_s"]), runs_line(sm["runs"]),
              sm["runs"][-1].get("statuses"),
              bound(sm["runs"][-1].get("meter"), "mfa-codes",
                    sm["runs"][-1].get("n"))))
        w("")
    lat_table(w, "login.code_submitted → reply", d.get("code_submitted_latency"))
    s = g(d, "login_started_latency", "half", "runs")
    if s:
        m = s[-1].get("meter")
        w("At half load (login.started): %s" % bound(m, "mfa-codes", s[-1]["n"]))
        w("")
    s = g(d, "bare_latency", "batched", "half", "runs")
    if s:
        w("Bare pipeline at the same rate: %s" % bound(s[-1].get("meter"), "bare",
                                                      s[-1]["n"]))
        w("")


def section_e2e(w, d):
    e = d.get("e2e")
    w("## 3. End to end: login.code_requested → email accepted")
    w("")
    if not e:
        w("Not available in this run (see notes).")
        w("")
        return
    w("mfa-codes and mfa-email drain a preloaded queue of "
      "login.code_requested events (each for a fresh pending login of its "
      "own user); the rate is the SMTP server's acceptances (5th–95th "
      "percentile). The SMTP server is bench/smtp_sink.c (accepts "
      "everything, keeps nothing but one line per message), standing in for "
      "a mail relay on another machine.")
    w("")
    w("- sustained: %s flows/s (runs: %s); mfa-codes side alone replied at "
      "%s/s meanwhile. Bounded by: %s" % (
          fmt(e["per_s"]), runs_line(e["runs"]),
          runs_line(e["runs"], "codes_side_per_s"),
          bound(e["runs"][-1].get("meter"), "mfa-codes + mfa-email",
                e["runs"][-1].get("n"))))
    ea = d.get("email_alone")
    if ea:
        w("- mfa-email alone (dispatch.code jobs queued as mfa-codes makes "
          "them, drained by one process, %s jobs in all): %s emails/s "
          "(runs: %s). Bounded by: %s" % (
              sum(r["n"] for r in ea["runs"]), fmt(ea["per_s"]),
              runs_line(ea["runs"]),
              bound(ea["runs"][-1].get("meter"), "mfa-email",
                    ea["runs"][-1].get("n"))))
    lt = e.get("latency") or {}
    w("- latency at %s flows/s (half the sustained rate, open loop): "
      "email accepted p50 %s ms, p99 %s ms after the event was due; the "
      "portal's reply (\"sent\") p50 %s ms." % (
          fmt(lt.get("rate")), fmt(lt.get("p50_ms"), 2), fmt(lt.get("p99_ms"), 2),
          fmt(lt.get("reply_p50_ms"), 2)))
    w("")


def section_sms(w, d):
    s = d.get("sms") or {}
    w("## 4. Dispatch concurrency (mfa-sms)")
    w("")
    if not s.get("available"):
        w("**Not available** in this run: mfa-sms or tests/servers/"
          "twilio_fake.py was missing when it ran.")
        w("")
        return
    w("One mfa-sms process drains a queue of dispatch.code jobs against "
      "tests/servers/twilio_fake.py answering every request after %d ms: "
      "%s msgs/s (runs: %s), against %s/s for a one-at-a-time client (one "
      "kept-alive connection) on the same fake: ratio %s. sms.concurrency "
      "%s: at most that many requests in flight, so the ceiling is "
      "concurrency / 0.150 s. Bounded by: %s" % (
          s["delay_ms"], fmt(s["per_s"]), runs_line(s["runs"]),
          fmt(s["sequential_per_s"], 2),
          fmt((s["per_s"] or 0) / s["sequential_per_s"]) if s.get(
              "sequential_per_s") else "n/a",
          s.get("concurrency"), bound(s["runs"][-1].get("meter"), "mfa-sms",
                                      s["runs"][-1].get("n"))))
    w("")


def section_cost(w, d):
    w("## 5. Cost: instructions per event and memory")
    w("")
    cost = d.get("cost") or {}
    if cost:
        w("valgrind --tool=callgrind; after a warm-up the counters are zeroed, "
          "the worker is paused while N events are queued, then drains them "
          "(batches as the runtime forms them) and the counters are dumped. "
          "Instructions of the worker process only (not the broker's or "
          "PostgreSQL's); repeatable where wall time is not.")
        w("")
        w("| worker:event | instructions/event | events | SQL round trips/event "
          "| publishes/event | alarm()/event | where (exclusive, by object) |")
        w("| --- | --- | --- | --- | --- | --- | --- |")
        for k in sorted(cost):
            c = cost[k]
            cpe = c.get("calls_per_event") or {}
            w("| %s | %s | %s | %s | %s | %s | %s |" % (
                k, "{:,}".format(c["per_event"]) if c["per_event"] else "n/a",
                c["events"], fmt(cpe.get("pq_exec")), fmt(cpe.get("amqp_publish")),
                fmt(cpe.get("alarm")), ", ".join(
                    "%s %s%%" % kv for kv in sorted(
                        c["by_object"].items(), key=lambda kv: -kv[1])[:6])))
        w("")
        w("In results.json, instructions_per_event has these per worker:event "
          "and one figure per worker: mfa-codes' is the mean of its three "
          "event types (a login is one of each), bare's the per-message "
          "pipeline's.")
        w("")
        w("Inclusive shares (callgrind_annotate --inclusive=yes; frames "
          "nest, so shares overlap):")
        w("")
        for k in sorted(cost):
            top = cost[k].get("top") or []
            tot = cost[k]["instructions"] or 1
            if top:
                w("- %s: %s" % (k, ", ".join(
                    "%s %.0f%%" % (short(n), 100.0 * ir / tot)
                    for n, ir in top[:9])))
        w("")
    soak = d.get("soak")
    if soak:
        proc = soak.get("processed") or {}
        w("The soak: every worker at once in fresh processes, each fed up to "
          "%s events of its own (contact.promoted of new contacts; "
          "login.started; dispatch.code jobs for email and for SMS, the Twilio "
          "fake answering at once) for at most %s s; %s s in all. Events "
          "handled: %s. %s" % (
              soak["events_per_worker"], soak.get("cap_s"), soak["wall_s"],
              ", ".join("%s %s" % kv for kv in sorted(proc.items())),
              bound(soak.get("meter"), "the workers",
                    sum(proc.values()) or None)))
        w("")
    rss = d.get("rss") or {}
    if rss:
        w("Peak RSS (VmHWM) per worker process, sampled every 0.5 s; growth "
          "compares the largest RSS of the second half of the process's life "
          "with that of the first half (after the first 10%).")
        w("")
        w("| worker | events in the process | peak KiB | of which heap (anon) "
          "| of which files (program, libraries) | early KiB | late KiB "
          "| growth KiB |")
        w("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for wk in sorted(rss):
            for x in rss[wk]:
                w("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
                    wk, x.get("events"), x.get("peak_kib"), x.get("anon_kib"),
                    x.get("file_kib"), x.get("rss_early_kib"),
                    x.get("rss_late_kib"), x.get("growth_kib")))
        w("")


def short(name):
    """A C++ signature without its argument list."""
    name = name.replace("(anonymous namespace)::", "")
    name = name.split("(")[0] if "(" in name and "::" in name else name
    return name.replace("i18n::phonenumbers::", "") or "?"


def section_load(w, d):
    w("## The load side is not the limit")
    w("")
    pre = [x for x in d.get("preload_rates") or [] if x]
    if pre:
        w("- build/bench/load preload (C, librabbitmq, 2000 confirms in "
          "flight) published at %s–%s events/s; it runs before a drain "
          "starts, never during." % (fmt(min(pre), 0), fmt(max(pre), 0)))
    cl = []
    for key in ("login_started_latency", "code_submitted_latency"):
        for label in ("half", "max"):
            for r in g(d, key, label, "runs") or []:
                cl.append(r)
    for r in g(d, "e2e", "latency", "runs") or []:
        cl.append(r)
    if cl:
        half = [r for key in ("login_started_latency", "code_submitted_latency")
                for r in g(d, key, "half", "runs") or []]
        half += [r for r in g(d, "bare_latency", "batched", "half", "runs") or []]
        lag_half = max([r["client"]["max_start_lag_ms"] for r in half] or [0])
        lag = max(r["client"]["max_start_lag_ms"] for r in cl)
        cpu = max(r["client"].get("cpu_run_s", r["client"]["cpu_s"]) /
                  max(r["client"]["seconds"], 0.001) for r in cl)
        w("- build/bench/client (the producer library): at most %.2f of a core "
          "while measuring. At half load no send started more than %.1f ms "
          "behind its schedule; at the maximum rates up to %.0f ms, when "
          "every thread was waiting on a reply from a saturated worker (the "
          "lag is counted in the latency, not hidden)." % (cpu, lag_half, lag))
    w("- replies are taken by build/bench/load sink (C, automatic acks); "
      "emails by build/bench/smtp_sink (C, poll loop, no disk).")
    w("")


def table(r, d):
    out = ["", "%-34s %s" % ("figure", "value")]
    for k in sorted(r):
        if isinstance(r[k], dict):
            for kk in sorted(r[k]):
                out.append("%-34s %s" % ("%s.%s" % (k, kk), fmt(r[k][kk])))
        else:
            out.append("%-34s %s" % (k, fmt(r[k])))
    out.append("")
    for row in targets(r, d):
        out.append("%-60s %-40s %-16s %s" % (row[0], row[1], row[2],
                                              row[3].replace("*", "")))
    return "\n".join(out)
