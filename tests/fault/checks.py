"""What the fault tests check once the system has drained, and the
counts they print.

- every event the broker confirmed is accounted for: a row in mfa.inbox
  for its consumer, or a message in mfa.dead; the dispatch jobs mfa-codes
  published (found in its stored outputs) likewise for mfa-email/mfa-sms;
- every 'sent' reply to login.code_requested has exactly one delivery
  row, in a final state (sent, failed with a reason, dropped with one);
- what users received: emails per delivery (the SMTP catcher's spool,
  one address per user and one code request per login, so per address)
  and SMS per delivery (the Twilio fake's records, one number per user);
  more than one copy of a delivery is a duplicate: counted, bounded, and
  every copy must carry the same code (a duplicate is a re-send, never a
  second code);
- verification still answers right: a wrong code is invalid and counted,
  the right one (read from the mail or SMS) verifies, once.
"""
import email
import email.policy
import json
import re
import time
from collections import Counter

DUP_BOUND = 0.05        # share of deliveries a user may get twice
WORK_QUEUES = ["mfa.contact-sync", "mfa.login", "mfa.dispatch.email",
               "mfa.dispatch.sms"]
ALL_QUEUES = WORK_QUEUES + ["%s.retry.%ds" % (q, d) for q in WORK_QUEUES
                            for d in (1, 2, 4)]

CODE_IN_MAIL = re.compile(r"^\s+(\d{6,10})\s*$", re.M)
CODE_IN_SMS = re.compile(r"\b(\d{6,10})\b")

CONSUMER = {
    "contact.promoted": "mfa-contact-sync",
    "contact.changed": "mfa-contact-sync",
    "user.email_confirmed": "mfa-contact-sync",
    "login.started": "mfa-codes",
    "login.code_requested": "mfa-codes",
    "login.code_submitted": "mfa-codes",
}


def inbox_rows(db, event_ids):
    """{(consumer, event_id)} of these events, and mfa-codes' outputs."""
    seen, outputs = set(), {}
    ids = list(event_ids)
    for i in range(0, len(ids), 2000):
        for r in db.rows("SELECT consumer, event_id::text AS eid, outputs "
                         "FROM mfa.inbox WHERE event_id = ANY(%s::uuid[])",
                         ids[i:i + 2000]):
            seen.add((r["consumer"], r["eid"]))
            if r["consumer"] == "mfa-codes":
                outputs[r["eid"]] = r["outputs"]
    return seen, outputs


def dispatch_jobs(outputs):
    """event_id -> channel of the dispatch.code jobs in mfa-codes' outputs."""
    jobs = {}
    for out in outputs.values():
        if isinstance(out, str):
            out = json.loads(out)
        for p in (out or {}).get("publish", []):
            if p.get("type") == "dispatch.code":
                jobs[p["event_id"]] = p["routing_key"]
    return jobs


def account_events(db, types, confirmed, dead):
    """Every confirmed event: in the inbox of its consumer, or dead.
    Returns (counts, missing list)."""
    seen, outputs = inbox_rows(db, confirmed)
    counts = Counter()
    missing = []
    for eid in confirmed:
        consumer = CONSUMER[types[eid]]
        if (consumer, eid) in seen:
            counts["inbox." + consumer] += 1
        elif eid in dead:
            counts["dead." + consumer] += 1
        else:
            missing.append((types[eid], eid))
    jobs = dispatch_jobs(outputs)
    jseen, _ = inbox_rows(db, jobs)
    for eid, channel in jobs.items():
        consumer = "mfa-" + channel
        if (consumer, eid) in jseen:
            counts["inbox." + consumer] += 1
        elif eid in dead:
            counts["dead." + consumer] += 1
        else:
            missing.append(("dispatch.code/" + channel, eid))
    counts["dispatch_jobs"] = len(jobs)
    return counts, missing


def deliveries(db, login_ids):
    return db.rows("SELECT delivery_id::text AS delivery_id, "
                   "login_id::text AS login_id, channel, status, attempts, "
                   "last_error, possible_duplicate, "
                   "extract(epoch FROM sent_at)::float8 AS sent_ts "
                   "FROM mfa.deliveries "
                   "WHERE kind = 'code' AND login_id = ANY(%s::uuid[])",
                   list(login_ids))


def wait_final(db, login_ids, timeout):
    """Waits until no delivery of these logins is 'queued'; the rows."""
    deadline = time.time() + timeout
    while True:
        try:
            rows = deliveries(db, login_ids)
        except Exception:        # the database may still be coming back
            rows = None
        if rows is not None and \
                all(r["status"] != "queued" for r in rows):
            return rows
        if time.time() > deadline:
            return rows or []
        time.sleep(1.0)


def mail_code(raw):
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    m = CODE_IN_MAIL.search(
        msg.get_body(preferencelist=("plain",)).get_content())
    return m.group(1) if m else None


def received(users, spool, sms_requests):
    """login_id -> the copies the user received for it, each {code, ts,
    tag}. Users have one address/number and one code request each."""
    by_to = {}
    for r in sms_requests:
        status = r.get("answered") or 0
        # 2xx: Twilio took it (also when our client had given up waiting);
        # 429/4xx/5xx: no message exists; "unknown": in flight when the
        # fake was stopped, counted as a message (the worst case).
        if status == "unknown" or 200 <= status < 300:
            slow = (r.get("t_out") or time.time()) - r["t_in"]
            by_to.setdefault(r["form"].get("To"), []).append({
                "code": (CODE_IN_SMS.search(r["form"].get("Body", "")) or
                         [None, None])[1],
                "ts": r["t_in"],
                "tag": "slow %.1f s" % slow if slow > 1 else None})
    out = {}
    for u in users:
        if u.login_id is None:
            continue
        if u.channel == "email":
            out[u.login_id] = [{"code": mail_code(raw),
                                "ts": meta.get("received_ts", 0),
                                "tag": meta.get("injected")}
                               for meta, raw in spool.get(u.email.lower(),
                                                          [])]
        else:
            out[u.login_id] = by_to.get(u.phone, [])
    return out


def delivery_report(users, rows, got, blind=()):
    """Checks rows against the 'sent' replies and what arrived: counts,
    problems, and the deliveries that arrived more than once. blind:
    (from, to) times when the Twilio fake was being stopped, so that an
    SMS sent then may be missing from its records."""
    by_login = {}
    for r in rows:
        by_login.setdefault(r["login_id"], []).append(r)
    c = Counter()
    problems = []
    details = []
    for u in users:
        if u.login_id is None:
            continue
        if (u.requested or {}).get("status") != "sent":
            if by_login.get(u.login_id):
                problems.append(("delivery without a 'sent' reply",
                                 u.login_id))
            continue
        c["sent_replies"] += 1
        mine = by_login.get(u.login_id, [])
        if len(mine) != 1:
            problems.append(("%d delivery rows" % len(mine), u.login_id))
            continue
        d = mine[0]
        u.delivery = d
        c["%s.%s" % (d["channel"], d["status"])] += 1
        if d["status"] == "queued":
            problems.append(("still queued", d["delivery_id"]))
        if d["status"] in ("failed", "dropped") and not d["last_error"]:
            problems.append(("%s without a reason" % d["status"],
                             d["delivery_id"]))
        if d["possible_duplicate"]:
            c[d["channel"] + ".flagged_possible_duplicate"] += 1
        copies = got.get(u.login_id, [])
        codes = [k["code"] for k in copies]
        n = len(codes)
        c[d["channel"] + ".messages"] += n
        if d["status"] == "sent" and n == 0:
            if d["channel"] == "sms" and any(
                    a - 2 <= (d["sent_ts"] or 0) <= b + 2 for a, b in blind):
                c["sms.sent_unrecorded_as_the_fake_stopped"] += 1
            else:
                problems.append(("'sent' but nothing arrived",
                                 d["delivery_id"]))
        if d["status"] in ("failed", "dropped"):
            c["reason: " + re.sub(r"\d+ s left|\d+ attempts", "N",
                                  d["last_error"] or "")[:90]] += 1
        if n > 1:
            details.append({"channel": d["channel"], "copies": n,
                            "delivery_id": d["delivery_id"],
                            "status": d["status"],
                            "attempts": d["attempts"],
                            "possible_duplicate": d["possible_duplicate"],
                            "ts": [k["ts"] for k in copies],
                            "tags": [k["tag"] for k in copies if k["tag"]]})
            c[d["channel"] + ".duplicated_deliveries"] += 1
            c[d["channel"] + ".extra_copies"] += n - 1
            c["max_copies"] = max(c["max_copies"], n)
        if len(set(codes)) > 1 or (codes and codes[0] is None):
            problems.append(("copies with different or no code",
                             d["delivery_id"]))
        u.code = codes[0] if codes else None
    return c, problems, details


def wrong(code):
    return code[:-1] + str((int(code[-1]) + 1) % 10)


def verify_sample(portal, users, per_channel=15, lock_some=3):
    """Wrong then right codes on delivered logins; returns counts and
    problems. Needs u.code (delivery_report)."""
    c = Counter()
    problems = []
    for channel in ("email", "sms"):
        pool = [u for u in users if u.channel == channel and
                getattr(u, "code", None) and
                u.delivery and u.delivery["status"] == "sent"]
        step = max(1, len(pool) // (per_channel + lock_some))
        pick = pool[::step][:per_channel + lock_some]
        for k, u in enumerate(pick):
            sub = {"login_id": u.login_id}
            if k < lock_some:
                # five wrong tries lock the login; the right code then too
                for n in range(5):
                    r = portal.call("login.code_submitted",
                                    dict(sub, code=wrong(u.code)))
                    want = "locked" if n == 4 else "invalid"
                    if r.get("status") != want:
                        problems.append(("wrong try %d" % (n + 1), r,
                                         u.login_id))
                r = portal.call("login.code_submitted", dict(sub, code=u.code))
                c["locked_then_right_" + r.get("status", "?")] += 1
                if r.get("status") != "locked":
                    problems.append(("right code after lock", r, u.login_id))
                continue
            r = portal.call("login.code_submitted",
                            dict(sub, code=wrong(u.code)))
            if r.get("status") != "invalid" or r.get("attempts_left") != 4:
                problems.append(("wrong code", r, u.login_id))
            r = portal.call("login.code_submitted", dict(sub, code=u.code))
            c[channel + ".verify_" + r.get("status", "?")] += 1
            if r.get("status") != "verified":
                problems.append(("right code", r, u.login_id))
            if k % 5 == 0:
                r = portal.call("login.code_submitted",
                                dict(sub, code=u.code))
                if r.get("status") != "expired":
                    problems.append(("code used twice", r, u.login_id))
                c["reuse_refused"] += 1
    return c, problems
