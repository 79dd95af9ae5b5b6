#!/usr/bin/python3
"""A small fake of Twilio's Messages API for the Portal MFA tests.

Prism (tests/package.json) checks our requests against Twilio's own
OpenAPI description but only ever answers the documented 201. This fake
answers what a test scripts, records every request so a test can read
back what arrived, and is started and stopped by the test itself (a
stopped fake is the "connection refused" case).

Run with Debian's /usr/bin/python3 (standard library only):

    /usr/bin/python3 tests/servers/twilio_fake.py [--port N] [--port-file F]
        [--tls-cert CERT.pem --tls-key KEY.pem] [--delay-ms N]

--port 0 (the default) picks a free port; the port is written to
--port-file (atomically) once the server listens, and printed. With
--tls-cert/--tls-key it speaks HTTPS only (certificate verification
tests). --delay-ms N delays every answer by N ms unless its scripted
answer has a delay_ms of its own (the bench's "Twilio answering in
150 ms"). One thread per connection, many hundreds at once: a client
with 128 requests in flight has 128 connections open.

The API (127.0.0.1 only):

  POST /2010-04-01/Accounts/{AccountSid}/Messages.json
        form fields as Twilio takes them. Needs HTTP basic auth (else 401
        with Twilio's code 20003) and a To (else 400, code 21604).
        Answered with the next scripted answer for its To number, or by
        default 201 with a fresh "SM..." sid, like Twilio.
  GET  /_fake/requests[?to=+31...]   JSON list of the recorded requests:
        {"seq", "account", "user", "password", "form": {field: value},
         "t_in", "t_out" (unix seconds, float; t_out null until answered),
         "answered": status, "peer": the client's port (connection reuse)}
  POST /_fake/script   JSON {"to": "+31...", "answers": [ANSWER, ...]}
        queues answers for that number, used in order; then the default.
  POST /_fake/reset    forgets requests and scripts.

ANSWER: {"status": 201|400|429|500|..., "code": 21211, "message": "...",
         "delay_ms": 500, "retry_after": 2, "raw": "body as is"}
A delay happens after the request is recorded and before the answer, so a
client that times out has still "sent" the message, as with Twilio. An
answer without "delay_ms" (the default 201 too) waits --delay-ms.
"""

import argparse
import base64
import json
import os
import secrets
import signal
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

LOCK = threading.Lock()
REQUESTS = []
SCRIPTS = {}
DEFAULT_DELAY_MS = 0  # --delay-ms


def _sid(prefix):
    return prefix + secrets.token_hex(16)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as with the real API
    # Headers and body go out in two writes: without TCP_NODELAY the body
    # waits for the client's delayed ACK (~40 ms on Linux) on every answer.
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):  # quiet
        pass

    def _send(self, status, obj=None, raw=None, headers=None):
        body = raw.encode() if raw is not None else json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def do_GET(self):
        u = urlparse(self.path)
        if u.path != "/_fake/requests":
            return self._send(404, {"code": 20404, "message": "not found"})
        to = parse_qs(u.query).get("to", [None])[0]
        with LOCK:
            out = [r for r in REQUESTS if to is None or r["form"].get("To") == to]
            out = json.loads(json.dumps(out))
        self._send(200, out)

    def do_POST(self):
        u = urlparse(self.path)
        body = self._body()
        if u.path == "/_fake/reset":
            with LOCK:
                REQUESTS.clear()
                SCRIPTS.clear()
            return self._send(200, {"ok": True})
        if u.path == "/_fake/script":
            req = json.loads(body or b"{}")
            with LOCK:
                SCRIPTS.setdefault(req["to"], []).extend(req["answers"])
            return self._send(200, {"ok": True})
        parts = u.path.split("/")
        # ['', '2010-04-01', 'Accounts', AC, 'Messages.json']
        if (len(parts) != 5 or parts[1] != "2010-04-01"
                or parts[2] != "Accounts" or parts[4] != "Messages.json"):
            return self._send(404, {"code": 20404, "message": "not found",
                                    "status": 404})
        self._message(parts[3], body)

    def _message(self, account, body):
        form = {k: v[0] for k, v in
                parse_qs(body.decode("utf-8", "replace"),
                         keep_blank_values=True).items()}
        user = password = None
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            try:
                user, _, password = base64.b64decode(
                    auth[6:]).decode().partition(":")
            except ValueError:
                pass
        rec = {"account": account, "user": user, "password": password,
               "form": form, "t_in": time.time(), "t_out": None,
               "answered": None, "peer": self.client_address[1]}
        to = form.get("To")
        with LOCK:
            rec["seq"] = len(REQUESTS)
            REQUESTS.append(rec)
            script = SCRIPTS.get(to) or []
            answer = script.pop(0) if script else {"status": 201}
        delay_ms = answer.get("delay_ms", DEFAULT_DELAY_MS)
        if delay_ms:
            time.sleep(delay_ms / 1000.0)
        status = answer.get("status", 201)
        if user is None:
            status, answer = 401, {"code": 20003, "message": "Authenticate"}
        elif not to:
            status, answer = 400, {"code": 21604,
                                   "message": "A 'To' phone number is required."}
        headers = {}
        if answer.get("retry_after") is not None:
            headers["Retry-After"] = str(answer["retry_after"])
        if answer.get("raw") is not None:
            obj, raw = None, answer["raw"]
        elif 200 <= status < 300:
            obj, raw = {
                "sid": _sid("SM"), "account_sid": account, "to": to,
                "from": form.get("From"), "body": form.get("Body"),
                "status": "queued", "num_segments": "1",
                "api_version": "2010-04-01", "error_code": None,
            }, None
        else:
            obj, raw = {"code": answer.get("code", 20500),
                        "message": answer.get("message", "error"),
                        "more_info": "https://www.twilio.com/docs/errors/%s"
                                     % answer.get("code", 20500),
                        "status": status}, None
        with LOCK:
            rec["t_out"] = time.time()
            rec["answered"] = status
        try:
            self._send(status, obj, raw, headers)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # The listen backlog: a client may open all its connections at once.
    request_queue_size = 1024


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--delay-ms", type=int, default=0,
                    help="delay of every answer without a delay_ms of its own")
    a = ap.parse_args()
    global DEFAULT_DELAY_MS
    DEFAULT_DELAY_MS = max(0, a.delay_ms)
    # A thread per connection: small stacks, so hundreds cost little.
    threading.stack_size(512 * 1024)
    srv = Server((a.host, a.port), Handler)
    if a.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.tls_cert, a.tls_key)
        # A client that refuses the certificate fails the handshake in
        # accept(); socketserver ignores that and serves the next one.
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    port = srv.server_address[1]
    if a.port_file:
        tmp = a.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.replace(tmp, a.port_file)
    print(port, flush=True)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(
        target=srv.shutdown, daemon=True).start())
    try:
        srv.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
