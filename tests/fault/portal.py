"""A careful portal (and CRM) for the fault tests: it keeps publishing
through broker restarts and counts what it had to do again.

It does what docs/events.md asks of a producer: persistent events with
`mandatory` on a channel in confirm mode, replies over direct reply-to,
and, when the broker did not confirm an event or no reply came in time,
the *same* event again (same event_id), which Portal MFA's inbox turns
into "the same answer, no second effect". When the connection goes (a
RabbitMQ restart) it reconnects and publishes again everything still
open: the replies of the old connection are gone with it.

One thread only (pika's BlockingConnection is not thread-safe); the test
calls pump() in its loop. Callbacks run from pump(), never from inside a
pika callback, so they may publish.
"""
import json
import time
import uuid
from collections import Counter
from datetime import datetime, timezone

import pika
import pika.exceptions

# What a lost or refused connection raises in pika 1.2, plus the socket's.
LOST = (pika.exceptions.AMQPError, OSError, AssertionError)


def now_rfc3339():
    return datetime.now(timezone.utc).isoformat(
        timespec="milliseconds").replace("+00:00", "Z")


class Req:
    __slots__ = ("eid", "etype", "body", "want_reply", "on_reply", "sent_at",
                 "tries", "confirmed", "ctx")

    def __init__(self, eid, etype, body, want_reply, on_reply, ctx):
        self.eid = eid
        self.etype = etype
        self.body = body
        self.want_reply = want_reply
        self.on_reply = on_reply
        self.ctx = ctx
        self.sent_at = 0.0
        self.tries = 0
        self.confirmed = False


class Portal:
    def __init__(self, url, reply_timeout=10.0, name="fault-portal"):
        self.url = url
        self.reply_timeout = reply_timeout
        self.name = name
        self.conn = None
        self.ch = None
        self.open = {}          # event_id -> Req: unconfirmed or unanswered
        self.replies = {}       # event_id -> the reply taken
        self.types = {}         # event_id -> type, for every event sent
        self.confirmed = set()  # event_ids the broker confirmed once or more
        self.stats = Counter()
        self._arrived = []      # (event_id, reply) from the pika callback
        self.different = []     # a second reply that was not the first
        self._retry_connect_at = 0.0

    # ---- connection -------------------------------------------------------

    def _params(self):
        p = pika.URLParameters(self.url)
        p.heartbeat = 10
        p.blocked_connection_timeout = 30
        p.socket_timeout = 5
        p.connection_attempts = 1
        p.client_properties = {"connection_name": self.name}
        return p

    def connected(self):
        return self.conn is not None and self.conn.is_open and \
            self.ch is not None and self.ch.is_open

    def _connect(self):
        """One attempt; True when connected (and everything open resent)."""
        if time.time() < self._retry_connect_at:
            return False
        try:
            conn = pika.BlockingConnection(self._params())
            ch = conn.channel()
            ch.confirm_delivery()
            ch.basic_consume("amq.rabbitmq.reply-to", self._on_reply,
                             auto_ack=True)
        except LOST:
            self._retry_connect_at = time.time() + 0.5
            self.stats["connect_failures"] += 1
            return False
        self.conn, self.ch = conn, ch
        self.stats["connects"] += 1
        if self.stats["connects"] > 1:
            # Replies to the old connection are lost: ask again.
            for req in list(self.open.values()):
                self._send(req)
                if not self.connected():
                    return False
        return True

    def _lost(self, count=True):
        if count:
            self.stats["connection_lost"] += 1
        try:
            if self.conn is not None and self.conn.is_open:
                self.conn.close()
        except LOST:
            pass
        self.conn = self.ch = None

    def close(self):
        self._lost(count=False)

    # ---- publishing ---------------------------------------------------------

    def _on_reply(self, ch, method, props, body):
        self._arrived.append((props.correlation_id, body))

    def _send(self, req):
        if not self.connected():
            return
        again = req.tries > 0
        props = pika.BasicProperties(
            content_type="application/json", delivery_mode=2,
            message_id=req.eid, type=req.etype,
            reply_to="amq.rabbitmq.reply-to" if req.want_reply else None)
        req.tries += 1
        req.sent_at = time.time()
        if again:
            self.stats["republished"] += 1
            self.stats["republished." + req.etype] += 1
        try:
            self.ch.basic_publish("mfa.events", req.etype, req.body, props,
                                  mandatory=True)
        except (pika.exceptions.UnroutableError,
                pika.exceptions.NackError) as e:
            # Not accepted: publish again shortly (same event_id).
            self.stats["not_accepted." + type(e).__name__] += 1
            req.sent_at = time.time() - self.reply_timeout + 1.0
            return
        except LOST:
            self._lost()
            return
        req.confirmed = True
        self.confirmed.add(req.eid)
        if not req.want_reply:
            self.open.pop(req.eid, None)

    def publish(self, etype, data, want_reply=True, on_reply=None, ctx=None,
                event_id=None, occurred_at=None):
        """Publishes a new event; on_reply(req, reply) runs from pump()."""
        eid = event_id or str(uuid.uuid4())
        env = {"event_id": eid, "type": etype,
               "occurred_at": occurred_at or now_rfc3339(), "data": data}
        req = Req(eid, etype, json.dumps(env).encode(), want_reply, on_reply,
                  ctx)
        self.types[eid] = etype
        self.stats["published." + etype] += 1
        if not self.connected():
            self._connect()
        self.open[eid] = req
        self._send(req)          # or later, from pump(), once connected
        return eid

    def outstanding(self):
        return len(self.open)

    # ---- the loop -----------------------------------------------------------

    def pump(self, seconds=0.05):
        """Reads replies for about `seconds`, runs callbacks, publishes
        again what timed out; reconnects when needed."""
        end = time.time() + seconds
        while True:
            if not self.connected():
                if not self._connect():
                    time.sleep(min(0.1, max(0.0, end - time.time())))
            if self.connected():
                try:
                    self.conn.process_data_events(
                        time_limit=max(0.0, min(0.05, end - time.time())))
                except LOST:
                    self._lost()
            self._dispatch()
            self._resend_overdue()
            if time.time() >= end:
                return

    def _dispatch(self):
        while self._arrived:
            eid, body = self._arrived.pop(0)
            req = self.open.get(eid)
            if req is None or not req.want_reply:
                # The answer to a copy we sent again, or to a question
                # answered already: it must be the same answer.
                self.stats["extra_replies"] += 1
                if eid in self.replies and \
                        json.loads(body) != self.replies[eid]:
                    self.stats["extra_replies_different"] += 1
                    self.different.append((eid, self.replies[eid],
                                           json.loads(body)))
                continue
            del self.open[eid]
            reply = json.loads(body)
            self.replies[eid] = reply
            self.confirmed.add(eid)
            if req.on_reply is not None:
                req.on_reply(req, reply)

    def _resend_overdue(self):
        if not self.connected():
            return
        now = time.time()
        for req in list(self.open.values()):
            late = now - req.sent_at
            if (req.want_reply and late > self.reply_timeout) or \
                    (not req.confirmed and late > 1.0):
                self._send(req)
                if not self.connected():
                    return

    def call(self, etype, data, timeout=60):
        """One question, answered (asked again as needed)."""
        eid = self.publish(etype, data)
        deadline = time.time() + timeout
        while eid not in self.replies:
            if time.time() > deadline:
                raise AssertionError("no reply to %s %s" % (etype, eid))
            self.pump(0.05)
        return self.replies[eid]

    def drain(self, timeout):
        """Pumps until nothing is open; True if it got there in time."""
        deadline = time.time() + timeout
        while self.open and time.time() < deadline:
            self.pump(0.1)
        return not self.open
