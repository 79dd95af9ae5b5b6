"""The worker skeleton (shared/runtime) against real RabbitMQ and PostgreSQL.

Uses mfa-testworker, whose handler does what the event's display_name says
(see tests/worker/main.c), so the runtime's guarantees are tested apart
from any business logic.
"""
import json
import signal
import time
import uuid

from conftest import servers

TW = "mfa-testworker"


def effects(db, event_id):
    return db.scalar("SELECT count(*) FROM mfa_test.effects WHERE event_id = %s",
                     event_id)


def test_consumed_acked_replied_and_result_published(workers, bus, db):
    w = workers(TW)
    eid = bus.publish("contact.changed", {"contact_id": "rt-1", "display_name": "ok"})
    assert bus.wait_reply(eid) == {"status": "ok"}
    assert effects(db, eid) == 1
    res = bus.results(want=1, match=lambda e: e["data"].get("for") == eid)
    assert res and res[0]["type"] == "test.done"
    assert w.stop() == 0
    # acked: nothing went back to the queue when the worker left
    assert bus.queue_depth("mfa.contact-sync") == 0


def test_failing_handler_retried_with_delays_then_dead_lettered(workers, bus, db):
    w = workers(TW)
    t0 = time.time()
    eid = bus.publish("contact.changed", {"contact_id": "rt-2", "display_name": "retry"},
                      reply=False)
    dead = bus.dead(lambda m: m["props"].message_id == eid, timeout=20)
    elapsed = time.time() - t0
    assert dead, w.logs()[-2000:]
    h = dead[0]["headers"]
    assert h["x-mfa-error"] == "test: transient"
    assert h["x-mfa-origin"] == "mfa.contact-sync"
    assert h["x-mfa-attempt"] == 2          # two retry tiers: 1 s and 2 s
    assert elapsed >= 2.5                   # it waited in the tiers
    assert w.logs().count("retry scheduled") == 2
    assert effects(db, eid) == 0


def test_invalid_input_dead_lettered_at_once_and_answered(workers, bus):
    workers(TW)
    eid = str(uuid.uuid4())
    bus.publish("contact.changed", {}, event_id=eid, raw=b"this is not json")
    reply = bus.wait_reply(eid)
    assert reply["status"] == "invalid"
    dead = bus.dead(lambda m: m["props"].message_id == eid)
    assert dead
    assert "invalid event" in dead[0]["headers"]["x-mfa-error"]
    assert dead[0]["headers"].get("x-mfa-attempt", 0) == 0
    assert dead[0]["body"] == b"this is not json"  # kept as it came


def test_same_event_twice_has_one_effect_and_the_same_reply(workers, bus, db):
    workers(TW)
    eid = str(uuid.uuid4())
    r1 = bus.call("contact.changed", {"contact_id": "rt-3", "display_name": "x"},
                  event_id=eid)
    r2 = bus.call("contact.changed", {"contact_id": "rt-3", "display_name": "x"},
                  event_id=eid)
    assert r1 == r2 == {"status": "ok"}
    assert effects(db, eid) == 1


def test_sigkill_mid_message_loses_nothing(workers, bus, db):
    w = workers(TW)
    eid = bus.publish("contact.changed",
                      {"contact_id": "rt-4", "display_name": "slow:4000"},
                      reply=False)
    time.sleep(1.0)                 # inside the handler's transaction now
    w.kill()
    assert effects(db, eid) == 0    # never committed
    w2 = workers(TW)
    deadline = time.time() + 20
    while effects(db, eid) == 0 and time.time() < deadline:
        time.sleep(0.1)
    assert effects(db, eid) == 1
    assert w2.stop() == 0
    assert bus.queue_depth("mfa.contact-sync") == 0


def test_rabbitmq_restart_reconnects(workers, bus, db):
    w = workers(TW)
    assert bus.call("contact.changed", {"contact_id": "rt-5", "display_name": "a"}) == {"status": "ok"}
    bus.close()
    servers("restart-rabbitmq")
    w.wait_log("broker connected", timeout=60, count=2)
    from conftest import Bus
    b2 = Bus()
    try:
        eid = b2.publish("contact.changed", {"contact_id": "rt-5", "display_name": "b"})
        assert b2.wait_reply(eid, timeout=20) == {"status": "ok"}
        assert effects(db, eid) == 1
    finally:
        b2.close()
    assert w.proc.poll() is None    # same process, it reconnected


def test_postgres_restart_reconnects_and_holds_messages(workers, bus, db):
    w = workers(TW)
    assert bus.call("contact.changed", {"contact_id": "rt-6", "display_name": "a"}) == {"status": "ok"}
    servers("stop-postgres")
    try:
        eid = bus.publish("contact.changed", {"contact_id": "rt-6", "display_name": "b"},
                          reply=False)
        time.sleep(2)
    finally:
        servers("start-postgres")
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            if effects(db, eid) == 1:
                break
        except Exception:
            pass
        time.sleep(0.2)
    assert effects(db, eid) == 1, w.logs()[-3000:]
    assert w.proc.poll() is None
    assert "database unavailable" in w.logs() or "database:" in w.logs()


def test_sigterm_finishes_in_flight_work_and_exits_zero(workers, bus, db):
    w = workers(TW)
    eid = bus.publish("contact.changed",
                      {"contact_id": "rt-7", "display_name": "slow:1500"},
                      reply=False)
    time.sleep(0.5)
    assert w.stop() == 0
    assert effects(db, eid) == 1
    assert bus.queue_depth("mfa.contact-sync") == 0


def test_dead_letter_of_a_code_submission_holds_no_code(workers, bus):
    workers(TW, MFA_TEST_QUEUE="mfa.login")
    lid = str(uuid.uuid4())
    eid = bus.publish("login.code_submitted", {"login_id": lid, "code": "reject"},
                      reply=False)
    dead = bus.dead(lambda m: m["props"].message_id == eid)
    assert dead
    body = json.loads(dead[0]["body"])
    assert body["data"]["code"] == "[redacted]"
    assert body["data"]["login_id"] == lid
    assert body["event_id"] == eid


def publish_batch(w, bus, names):
    """Publishes one event per name while the worker is stopped, so that
    they reach it together and run as one batch."""
    w.proc.send_signal(signal.SIGSTOP)
    try:
        return [bus.publish("contact.changed",
                            {"contact_id": "rt-b%d" % i, "display_name": n},
                            reply=n != "sqlerror")
                for i, n in enumerate(names)]
    finally:
        w.proc.send_signal(signal.SIGCONT)


def inbox_kept(db, ids):
    rows = db.rows("SELECT event_id::text AS id, outputs IS NOT NULL AS kept "
                   "FROM mfa.inbox WHERE consumer = 'mfa-testworker' "
                   "AND event_id = ANY(%s::uuid[])", ids)
    return {r["id"]: r["kept"] for r in rows}


def test_a_job_that_wrote_then_failed_is_undone_alone(workers, bus, db):
    """The runtime runs a batch in one transaction without savepoints; a
    job that wrote and is then rejected makes it start over the careful
    way, so that job's effect is undone and its batch-mates' are kept."""
    w = workers(TW)
    ids = publish_batch(w, bus, ["ok"] * 6 + ["dirty-reject"] + ["ok"] * 5)
    dirty = ids.pop(6)
    for eid in ids:
        assert bus.wait_reply(eid) == {"status": "ok"}
        assert effects(db, eid) == 1
    reply = bus.wait_reply(dirty)
    assert reply["status"] == "invalid"
    assert reply["error"] == "test: rejected after writing"
    assert effects(db, dirty) == 0
    assert bus.dead(lambda m: m["props"].message_id == dirty, timeout=20)
    assert inbox_kept(db, ids + [dirty]) == {eid: True for eid in ids}


def test_an_sql_error_fails_only_its_own_job(workers, bus, db):
    w = workers(TW)
    ids = publish_batch(w, bus, ["ok"] * 5 + ["sqlerror"] + ["ok"] * 5)
    bad = ids.pop(5)
    for eid in ids:
        assert bus.wait_reply(eid) == {"status": "ok"}
        assert effects(db, eid) == 1
    dead = bus.dead(lambda m: m["props"].message_id == bad, timeout=20)
    assert dead and "division by zero" in dead[0]["headers"]["x-mfa-error"]
    assert effects(db, bad) == 0
    assert inbox_kept(db, ids + [bad]) == {eid: True for eid in ids}


def test_a_message_that_kills_its_worker_ends_dead_after_the_limit(workers, bus, db):
    """Classic queues have no delivery counter: the runtime runs a
    redelivered message alone, counts the run first, and past
    amqp.delivery_limit dead-letters it without running it. The messages
    delivered with it are handled once each."""
    w = workers(TW, MFA_AMQP_DELIVERY_LIMIT="2")
    ids = publish_batch(w, bus, ["ok", "ok", "crash", "ok", "ok"])
    bad = ids.pop(2)
    crashes, dead = 0, []
    deadline = time.time() + 60
    while not dead and time.time() < deadline:
        dead = bus.dead(lambda m: m["props"].message_id == bad, timeout=0.5)
        if w.proc.poll() is not None:  # killed itself: restart it
            crashes += 1
            w.start()
    assert dead, w.logs()[-3000:]
    assert "delivered 3 times without being finished" in \
        dead[0]["headers"]["x-mfa-error"]
    assert crashes == 3  # the first delivery, then two counted runs
    for eid in ids:
        assert bus.wait_reply(eid) == {"status": "ok"}
        assert effects(db, eid) == 1
    assert db.scalar("SELECT count(*) FROM mfa.redeliveries") == 0
    assert w.stop() == 0
