#!/usr/bin/python3
"""SMTP catcher for the Portal MFA tests (started by tests/servers.sh).

Run with Debian's /usr/bin/python3 (python3-aiosmtpd):

    /usr/bin/python3 tests/servers/smtp_catcher.py --dir DIR/smtp --port PORT

Plain SMTP (no STARTTLS, no AUTH) on 127.0.0.1:PORT. Files under --dir:

    spool/<seq>-<queueid>.eml   every accepted message, raw bytes as received
                                (after SMTP dot-unstuffing, CRLF line ends)
    spool/<seq>-<queueid>.json  envelope: mail_from, pipelined (RCPT TO came
                                with MAIL FROM), rcpt_tos, options, peer,
                                helo, queue_id, seq, received_at, size
                                (written before the .eml appears; both are
                                renamed into place, so a visible file is
                                complete)
    control.json                failure injection, re-read at every command
    smtp.log                    one line per command/result
    pid                         our pid, written once we are listening

A successful DATA is answered "250 2.0.0 Ok: queued as <QUEUEID>".

control.json (missing or unreadable = {"mode": "ok"}):

    {"mode": "ok"}
    {"mode": "tempfail", "count": N}   451 4.3.0 on the next N RCPT/DATA
    {"mode": "permfail"}               550 5.1.1 on RCPT
    {"mode": "data_permfail"}          554 5.6.0 after DATA (message dropped)
    {"mode": "data_tempfail"}          451 4.3.0 after DATA only
    {"mode": "hang", "seconds": S}     sleep S s before answering DATA, then
                                       accept normally (if the client hangs
                                       up meanwhile, nothing is stored)
    {"mode": "delay_ms", "ms": M}      sleep M ms before the DATA reply
    {"mode": "drop"}                   after DATA: store the message, then
                                       close the connection without a reply
                                       (the classic "did it send?" case)

Optional keys, for any mode:
    "pipelining": false  EHLO does not offer PIPELINING (offered by
                   default, as Postfix does); read at each EHLO.
    "count": N     inject N times, then the file is rewritten to
                   {"mode": "ok"}; the count is decremented in the file
                   itself (atomically) at each injection. Without "count"
                   the mode stays until the file changes.
    "at": "data"   where hang/delay_ms apply: one of "connect", "ehlo",
                   "mail", "rcpt", "data" (default "data"), or a list.
                   For tempfail: "rcpt", "data" or both (default both).
    "rcpt": [...]  only inject when a recipient (RCPT address, or any
                   envelope recipient at DATA) is in this list
                   (case-insensitive); other mail is handled normally.

Write control.json atomically (write a temp file, then rename) from tests.
"""

import argparse
import asyncio
import json
import logging
import os
import re
import secrets
import signal
import sys
import time

from aiosmtpd.smtp import SMTP

LOG = logging.getLogger("catcher")

DEFAULT_AT = {
    "hang": ["data"],
    "delay_ms": ["data"],
    "tempfail": ["rcpt", "data"],
}


class Control:
    """control.json, read fresh for every command."""

    def __init__(self, path):
        self.path = path

    def read(self):
        for attempt in range(3):
            try:
                with open(self.path, "rb") as f:
                    raw = f.read()
            except FileNotFoundError:
                return {"mode": "ok"}
            except OSError as e:
                LOG.warning("control: cannot read %s: %s", self.path, e)
                return {"mode": "ok"}
            if not raw.strip():
                return {"mode": "ok"}
            try:
                obj = json.loads(raw)
                if isinstance(obj, dict):
                    return obj
                LOG.warning("control: not a JSON object, using ok")
                return {"mode": "ok"}
            except ValueError:
                # Perhaps a writer that is not atomic: try again shortly.
                time.sleep(0.01)
        LOG.warning("control: invalid JSON in %s, using ok", self.path)
        return {"mode": "ok"}

    def write(self, obj):
        tmp = "%s.tmp.%d" % (self.path, os.getpid())
        with open(tmp, "w") as f:
            json.dump(obj, f)
            f.write("\n")
        os.replace(tmp, self.path)

    def consume(self, ctl):
        """One injection happened: decrement "count" in the file."""
        if "count" not in ctl:
            return
        try:
            n = int(ctl["count"])
        except (TypeError, ValueError):
            n = 1
        n -= 1
        if n <= 0:
            self.write({"mode": "ok"})
        else:
            ctl = dict(ctl)
            ctl["count"] = n
            self.write(ctl)


def _at(ctl):
    at = ctl.get("at")
    if at is None:
        return DEFAULT_AT.get(ctl.get("mode"), [])
    if isinstance(at, str):
        return [at.lower()]
    return [str(a).lower() for a in at]


def _matches(ctl, addrs):
    only = ctl.get("rcpt")
    if not only:
        return True
    if isinstance(only, str):
        only = [only]
    want = {str(a).lower() for a in only}
    return any(a.lower() in want for a in addrs)


def _active(ctl):
    mode = ctl.get("mode", "ok")
    if mode == "ok":
        return False
    if "count" in ctl:
        try:
            return int(ctl["count"]) > 0
        except (TypeError, ValueError):
            return False
    return True


class Handler:
    def __init__(self, spool, control):
        self.spool = spool
        self.control = control
        self.seq = self._last_seq()

    def _last_seq(self):
        last = 0
        for name in os.listdir(self.spool):
            m = re.match(r"^(\d+)-", name)
            if m:
                last = max(last, int(m.group(1)))
        return last

    async def _delay(self, ctl, where, addrs=()):
        """hang / delay_ms at this point of the dialogue, if configured."""
        mode = ctl.get("mode")
        if mode not in ("hang", "delay_ms") or not _active(ctl):
            return
        if where not in _at(ctl) or not _matches(ctl, addrs):
            return
        if mode == "hang":
            secs = float(ctl.get("seconds", 3600))
        else:
            secs = float(ctl.get("ms", 0)) / 1000.0
        self.control.consume(ctl)
        LOG.info("inject %s: sleeping %.3f s at %s", mode, secs, where)
        await asyncio.sleep(secs)

    async def handle_EHLO(self, server, session, envelope, hostname,
                          responses):
        ctl = self.control.read()
        await self._delay(ctl, "ehlo")
        session.host_name = hostname
        LOG.info("%s EHLO %s", _peer(session), hostname)
        if ctl.get("pipelining", True):
            # aiosmtpd reads pipelined commands in order; like Postfix,
            # say so (the last line, "250 HELP", stays last).
            responses.insert(len(responses) - 1, "250-PIPELINING")
        return responses

    async def handle_MAIL(self, server, session, envelope, address,
                          mail_options):
        ctl = self.control.read()
        await self._delay(ctl, "mail")
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        # Pipelined (RFC 2920): RCPT TO came in the same write, before
        # this reply went out.
        buffered = bytes(getattr(getattr(server, "_reader", None),
                                 "_buffer", b""))
        envelope.pipelined = b"RCPT TO:" in buffered.upper()
        LOG.info("%s MAIL FROM:<%s> %s%s", _peer(session), address,
                 " ".join(mail_options),
                 " (pipelined)" if envelope.pipelined else "")
        return "250 2.1.0 Ok"

    async def handle_RCPT(self, server, session, envelope, address,
                          rcpt_options):
        ctl = self.control.read()
        mode = ctl.get("mode", "ok")
        peer = _peer(session)
        if _active(ctl) and _matches(ctl, [address]):
            if mode == "tempfail" and "rcpt" in _at(ctl):
                self.control.consume(ctl)
                LOG.info("%s RCPT TO:<%s> -> 451 (injected)", peer, address)
                return "451 4.3.0 Temporary failure (injected)"
            if mode == "permfail":
                self.control.consume(ctl)
                LOG.info("%s RCPT TO:<%s> -> 550 (injected)", peer, address)
                return "550 5.1.1 <%s>: Recipient address rejected: " \
                    "User unknown (injected)" % address
        await self._delay(ctl, "rcpt", [address])
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        LOG.info("%s RCPT TO:<%s> -> 250", peer, address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server, session, envelope):
        ctl = self.control.read()
        mode = ctl.get("mode", "ok")
        peer = _peer(session)
        hit = _active(ctl) and _matches(ctl, envelope.rcpt_tos)
        if hit and mode in ("tempfail", "data_tempfail") and \
                (mode == "data_tempfail" or "data" in _at(ctl)):
            self.control.consume(ctl)
            LOG.info("%s DATA -> 451 (injected)", peer)
            return "451 4.3.0 Temporary failure (injected)"
        if hit and mode == "data_permfail":
            self.control.consume(ctl)
            LOG.info("%s DATA -> 554 (injected)", peer)
            return "554 5.6.0 Message rejected (injected)"
        await self._delay(ctl, "data", envelope.rcpt_tos)

        qid = secrets.token_hex(5).upper()
        self.seq += 1
        base = os.path.join(self.spool, "%06d-%s" % (self.seq, qid))
        content = envelope.original_content or b""
        meta = {
            "seq": self.seq,
            "queue_id": qid,
            "mail_from": envelope.mail_from,
            "pipelined": getattr(envelope, "pipelined", False),
            "rcpt_tos": list(envelope.rcpt_tos),
            "mail_options": list(envelope.mail_options),
            "rcpt_options": list(envelope.rcpt_options),
            "helo": session.host_name,
            "peer": list(session.peer) if session.peer else None,
            "received_at": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                         time.gmtime()),
            "received_ts": time.time(),
            "size": len(content),
            "injected": mode if hit else None,
        }
        _atomic_write(base + ".json",
                      (json.dumps(meta, indent=1) + "\n").encode())
        _atomic_write(base + ".eml", content)
        LOG.info("%s DATA %d bytes from <%s> to %s -> queued as %s (%s)",
                 peer, len(content), envelope.mail_from,
                 ",".join("<%s>" % r for r in envelope.rcpt_tos), qid,
                 os.path.basename(base) + ".eml")
        if hit and mode == "drop":
            self.control.consume(ctl)
            LOG.info("%s DATA stored, dropping connection (injected)", peer)
            if server.transport is not None:
                server.transport.abort()
            return "421 4.4.2 Connection dropped (injected)"
        return "250 2.0.0 Ok: queued as %s" % qid


class CatcherSMTP(SMTP):
    """aiosmtpd's SMTP plus a hook for delays before the greeting."""

    async def _handle_client(self):
        ctl = self.event_handler.control.read()
        await self.event_handler._delay(ctl, "connect")
        LOG.info("%s connected", _peer(self.session))
        await super()._handle_client()


def _peer(session):
    p = getattr(session, "peer", None)
    if isinstance(p, tuple) and len(p) >= 2:
        return "%s:%s" % (p[0], p[1])
    return str(p)


def _atomic_write(path, data):
    tmp = os.path.join(os.path.dirname(path),
                       ".tmp-" + os.path.basename(path))
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
    os.replace(tmp, path)


async def amain(args):
    base = os.path.abspath(args.dir)
    spool = os.path.join(base, "spool")
    os.makedirs(spool, exist_ok=True)
    control = Control(os.path.join(base, "control.json"))
    if not os.path.exists(control.path):
        control.write({"mode": "ok"})
    handler = Handler(spool, control)
    loop = asyncio.get_running_loop()

    def factory():
        return CatcherSMTP(handler, hostname="mfa-smtp-catcher.test",
                           ident="MFA test SMTP catcher",
                           decode_data=False, enable_SMTPUTF8=True,
                           data_size_limit=args.max_size,
                           timeout=args.idle_timeout)

    server = await loop.create_server(factory, host=args.host,
                                      port=args.port, backlog=1024,
                                      reuse_address=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    pidfile = os.path.join(base, "pid")
    _atomic_write(pidfile, b"%d\n" % os.getpid())
    LOG.info("listening on %s:%d, spool %s, seq %d", args.host, args.port,
             spool, handler.seq)
    try:
        await stop.wait()
    finally:
        LOG.info("stopping")
        server.close()
        try:
            with open(pidfile) as f:
                if f.read().strip() == str(os.getpid()):
                    os.unlink(pidfile)
        except OSError:
            pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--max-size", type=int, default=10 * 1024 * 1024)
    ap.add_argument("--idle-timeout", type=float, default=300)
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    logging.basicConfig(
        filename=os.path.join(args.dir, "smtp.log"),
        level=logging.INFO,
        format="%(asctime)s.%(msecs)03d %(levelname)s %(message)s",
        datefmt="%Y-%m-%dT%H:%M:%S")
    logging.getLogger("mail.log").setLevel(
        logging.DEBUG if args.verbose else logging.WARNING)
    try:
        asyncio.run(amain(args))
    except OSError as e:
        LOG.error("cannot start: %s", e)
        print("smtp_catcher: cannot start: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
