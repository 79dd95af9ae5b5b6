"""The cluster part of "Proving it holds": a node of a three-node RabbitMQ
cluster dies under load and nothing is lost.

tests/fault/cluster.sh starts three nodes on loopback (one Erlang cookie,
one private epmd, their own names and ports) and joins 2 and 3 to 1. The
workers (contact-sync, codes, email) run with MFA_AMQP_QUEUE_TYPE=quorum
and connect to node 1; the portal publishes through node 3. The queues
are first declared through node 2 (by a worker started there once), so
node 2 leads every one of them: when node 2 is SIGKILLed halfway through
the stream, each queue must elect a new leader on 1 or 3 while messages
are published, consumed and confirmed.

What makes it hold, and what the test shows:
- quorum queues: replicated on all three nodes, they stay available with
  two of three (asserted: every mfa.* queue is quorum, led by node 1 or
  3 and online on two nodes while node 2 is down); a classic durable
  queue declared on node 2, for comparison, is unreachable meanwhile
  (404 "home node ... is down", publishes to it come back unroutable)
  and has its messages again only when node 2 is back;
- publisher confirms (the portal's and the workers'): a publish counts
  only once the queue's leader has it on a majority, so the kill loses
  nothing that was acknowledged; anything unconfirmed is published again
  with the same event_id and the inbox makes that harmless;
- afterwards: every event is in mfa.inbox for its consumer (once: the
  primary key), every code request has one final delivery, none dead,
  and the workers are the same processes as before.
"""
import json
import os
import subprocess
import threading
import time
import uuid

import pika
import pika.exceptions
import pytest

import checks
from conftest import FAULT_ENV, REPO, dead_letters, queue_depths, \
    smtp_control, spool_by_rcpt
from checks import ALL_QUEUES, DUP_BOUND
from portal import Portal

CLUSTER = os.path.join(REPO, "tests", "fault", "cluster.sh")
LOGINS = int(os.environ.get("MFA_CLUSTER_LOGINS", "150"))
STREAM_S = 25.0
KILL_AT = 8.0
PROBE = "fault.classic-probe"
RUN = uuid.uuid4().hex[:8]


class Cluster:
    def __init__(self, d, env):
        self.dir = d
        self.env = env

    def url(self, i):
        return self.env["MFA_CLUSTER_URL_%d" % i]

    def node(self, i):
        return self.env["MFA_CLUSTER_NODE_%d" % i]

    def sh(self, *args, timeout=300):
        r = subprocess.run(["sh", CLUSTER, args[0], self.dir, *args[1:]],
                           capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise AssertionError("cluster.sh %s: %s" %
                                 (args, r.stderr[-2000:]))
        return r.stdout

    def queues(self, i=1):
        out = self.sh("rabbitmqctl", str(i), "-q", "list_queues", "name",
                      "type", "leader", "members", "online", "messages",
                      "--formatter", "json")
        return {q["name"]: q for q in json.loads(out)}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    d = os.environ.get("MFA_FAULT_CLUSTER_DIR") or \
        str(tmp_path_factory.mktemp("cluster"))
    r = subprocess.run(["sh", CLUSTER, "start", d, "3"], capture_output=True,
                       text=True, timeout=600)
    try:
        assert r.returncode == 0, "cluster start: " + r.stderr[-3000:]
        env = {}
        for line in r.stdout.splitlines():
            if line.startswith("export "):
                k, _, v = line[7:].partition("=")
                env[k] = v
        yield Cluster(d, env)
    finally:
        subprocess.run(["sh", CLUSTER, "stop", d, "--clean"],
                       capture_output=True, timeout=300)


def make_users(db, n):
    users = []
    for i in range(n):
        u = type("U", (), {})()
        u.cid = "cl-%s-%04d" % (RUN, i)
        u.email = "cl%04d-%s@example.com" % (i, RUN)
        u.channel = "email"
        u.login_id = u.requested = u.delivery = u.code = None
        users.append(u)
    db.execute("INSERT INTO mfa.users (contact_id, organization_id, "
               "display_name, email, email_status, email_confirmed, locale) "
               "SELECT c, 'org-cluster', 'Cluster User', e, 'valid', true, "
               "'en' FROM unnest(%s::text[], %s::text[]) AS t(c, e)",
               [u.cid for u in users], [u.email for u in users])
    return users


def probe_classic(url, n=5):
    """A classic durable queue on the node of url, with n messages."""
    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    ch.confirm_delivery()
    ch.queue_declare(PROBE, durable=True,
                     arguments={"x-queue-type": "classic"})
    for k in range(n):
        ch.basic_publish("", PROBE, b"probe %d" % k,
                         pika.BasicProperties(delivery_mode=2),
                         mandatory=True)
    conn.close()


def classic_state(url):
    """What a client on url sees of the probe queue: its depth, or the
    broker's refusal."""
    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        ch = conn.channel()
        try:
            depth = ch.queue_declare(PROBE, passive=True).method.message_count
        except pika.exceptions.ChannelClosedByBroker as e:
            return {"declare": "%d %s" % (e.reply_code, e.reply_text)}
        ch = conn.channel()
        ch.confirm_delivery()
        try:
            ch.basic_publish("", PROBE, b"while down",
                             pika.BasicProperties(delivery_mode=2),
                             mandatory=True)
            pub = "confirmed"
        except pika.exceptions.UnroutableError:
            pub = "returned (unroutable)"
        return {"depth": depth, "publish": pub}
    finally:
        conn.close()


def test_node_of_the_cluster_dies_under_load(cluster, db, make_fleet):
    env = dict(FAULT_ENV, MFA_AMQP_QUEUE_TYPE="quorum")
    # 1. the topology, declared through node 2: node 2 leads every queue
    first = make_fleet(dict(env, MFA_AMQP_URL=cluster.url(2)))
    first.start("mfa-codes")
    assert first.stop_all() == {"mfa-codes": 0}
    before = {n: q for n, q in cluster.queues().items()
              if n.startswith("mfa.")}
    assert set(ALL_QUEUES) | {"mfa.dead"} <= set(before), sorted(before)
    assert {q["type"] for q in before.values()} == {"quorum"}
    assert {q["leader"] for q in before.values()} == {cluster.node(2)}
    assert all(len(q["members"]) == 3 for q in before.values())
    probe_classic(cluster.url(2))

    # 2. workers on node 1, portal on node 3
    fleet = make_fleet(dict(env, MFA_AMQP_URL=cluster.url(1)))
    for name in ("mfa-contact-sync", "mfa-codes", "mfa-email"):
        fleet.start(name)
    pids = {n: w.proc.pid for n, w in fleet.procs.items()}
    smtp_control({"mode": "ok"})
    users = make_users(db, LOGINS)
    portal = Portal(cluster.url(3), reply_timeout=10.0, name="cluster-portal")
    down = {}

    def on_requested(req, reply):
        req.ctx.requested = reply
        if down.get("killed_at") and not down.get("back"):
            down["answered_while_down"] = down.get("answered_while_down",
                                                   0) + 1

    def on_started(req, reply):
        if reply.get("status") == "pending":
            portal.publish("login.code_requested",
                           {"login_id": req.ctx.login_id, "method": "email"},
                           on_reply=on_requested, ctx=req.ctx)

    def kill_node_2():
        try:
            cluster.sh("kill-node", "2")
            down["killed_at"] = time.time()
            time.sleep(3)
            down["classic"] = classic_state(cluster.url(1))
            down["queues"] = {n: q for n, q in cluster.queues().items()
                              if n.startswith("mfa.")}
        except Exception as e:    # failed on below, with the reason
            down["error"] = repr(e)

    killer = threading.Thread(target=kill_node_2, daemon=True)
    t0 = time.time()
    n = 0
    while n < LOGINS or not all(u.requested for u in users):
        el = time.time() - t0
        if el >= KILL_AT and not down.get("kill_started"):
            down["kill_started"] = True
            killer.start()
        while n < LOGINS and n <= el * LOGINS / STREAM_S:
            u = users[n]
            n += 1
            u.login_id = str(uuid.uuid4())
            portal.publish("login.started",
                           {"login_id": u.login_id, "contact_id": u.cid},
                           on_reply=on_started, ctx=u)
            portal.publish("contact.changed",
                           {"contact_id": users[n // 2].cid,
                            "display_name": "Cl %s" % uuid.uuid4().hex[:6]},
                           want_reply=False)
        portal.pump(0.05)
        if el > STREAM_S + 120:
            break
    killer.join(120)
    answered = portal.drain(60)
    down["back"] = True
    rows = checks.wait_final(db, [u.login_id for u in users], timeout=120)
    depths = {}
    for _ in range(60):
        depths = queue_depths(cluster.url(1), ALL_QUEUES)
        if not any(depths.values()):
            break
        time.sleep(1)

    dead = dead_letters(cluster.url(1))
    events, missing = checks.account_events(db, portal.types,
                                            portal.confirmed, dead)
    got = checks.received(users, spool_by_rcpt(), [])
    deliv, problems, dups = checks.delivery_report(users, rows, got)
    alive = {n: w.proc.poll() is None and w.proc.pid == pids[n]
             for n, w in fleet.procs.items()}
    reconnects = {n: w.logs().count("broker connected") - 1
                  for n, w in fleet.procs.items()}
    portal.close()

    # 3. node 2 back: it rejoins, the classic queue has its messages again
    cluster.sh("start-node", "2")
    back = classic_state(cluster.url(1))
    stops = fleet.stop_all()

    during = down.get("queues", {})
    report = {
        "logins": LOGINS, "node_killed": cluster.node(2),
        "answered_while_node_2_down": down.get("answered_while_down", 0),
        "quorum_queues_while_down": {
            "leaders": sorted({q["leader"] for q in during.values()}),
            "online_members": sorted({len(q["online"])
                                      for q in during.values()})},
        "classic_queue_on_node_2": {"while_down": down.get("classic"),
                                    "after_restart": back},
        "portal": dict(portal.stats), "events": dict(events),
        "events_missing": len(missing), "deliveries": dict(deliv),
        "duplicates": dups, "dead_letters": len(dead),
        "workers_same_process": alive, "worker_reconnects": reconnects,
    }
    text = json.dumps(report, indent=1, sort_keys=True, default=str)
    print("\n==== cluster run counts ====\n" + text)
    if os.environ.get("MFA_FAULT_REPORT"):
        with open(os.environ["MFA_FAULT_REPORT"].replace(
                ".json", "-cluster.json"), "w") as f:
            f.write(text + "\n")

    assert "error" not in down, down["error"]
    assert answered and not portal.different
    assert all((u.requested or {}).get("status") == "sent" for u in users)
    assert not missing, missing[:20]
    assert not problems, problems[:20]
    assert not dead, dead
    assert not any(depths.values()), depths
    assert deliv["email.sent"] == LOGINS, deliv
    assert len(dups) <= DUP_BOUND * LOGINS, dups
    # while node 2 was down: every queue led elsewhere and serving
    assert during and cluster.node(2) not in {q["leader"]
                                              for q in during.values()}
    assert {len(q["online"]) for q in during.values()} == {2}
    assert down.get("answered_while_down", 0) > 0
    # ... and the classic queue of node 2 was not
    assert down["classic"].get("declare", "").startswith("404"), down
    assert back.get("depth") == 5, back
    assert all(alive.values()), alive
    assert all(rc == 0 for rc in stops.values()), stops
    assert not fleet.sanitizer_reports() and not first.sanitizer_reports()
