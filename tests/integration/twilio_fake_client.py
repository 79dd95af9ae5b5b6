"""The scripted Twilio fake (tests/servers/twilio_fake.py) as a test runs
it: start and stop it, script its answers, read back what it recorded.

Used by tests/integration/test_sms.py (imported like mfa_crypto) and by
tests/fault/conftest.py (which puts this folder on sys.path). Standard
library only, no fixtures: each suite makes its own, with the settings it
needs.

A stop keeps what the fake recorded (the next process starts empty):
requests() is what the running fake saw, all_requests() everything since
the first start. A restart takes the same port, so the workers' settings
stay right.
"""
import json
import os
import signal
import ssl
import subprocess
import time
import urllib.request

PY = "/usr/bin/python3"
FAKE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))), "servers", "twilio_fake.py")


class TwilioFake:
    def __init__(self, tmpdir, tls=None):
        self.dir = str(tmpdir)
        self.port = None
        self.proc = None
        self.tls = tls  # (key.pem, cert.pem): HTTPS for "localhost"
        self.ctx = ssl.create_default_context(cafile=tls[1]) if tls else None
        self.kept = []
        # (from, to) epoch seconds of each stop: a request that came in
        # between the last read of the records and the exit is not in them
        self.blind = []

    @property
    def url(self):
        if self.tls:
            return "https://localhost:%d" % self.port
        return "http://127.0.0.1:%d" % self.port

    def start(self):
        """Starts the fake (on its last port, if it ran before) and
        returns once it answers."""
        pf = os.path.join(self.dir, "port")
        if os.path.exists(pf):
            os.unlink(pf)
        tls = ["--tls-key", self.tls[0], "--tls-cert", self.tls[1]] \
            if self.tls else []
        with open(os.path.join(self.dir, "fake.log"), "ab") as log:
            self.proc = subprocess.Popen(
                [PY, FAKE, "--port", str(self.port or 0), "--port-file", pf,
                 *tls], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        while not os.path.exists(pf):
            assert self.proc.poll() is None, "twilio_fake exited"
            assert time.time() < deadline, "twilio_fake did not start"
            time.sleep(0.05)
        with open(pf) as f:
            self.port = int(f.read())
        while True:
            try:
                self.requests()
                return
            except OSError:
                assert self.proc.poll() is None, "twilio_fake exited"
                assert time.time() < deadline, "twilio_fake does not answer"
                time.sleep(0.1)

    def stop(self):
        """SIGTERM (SIGKILL after 10 s); what it recorded is kept."""
        if self.proc and self.proc.poll() is None:
            t = time.time()
            snap = self.requests()
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.blind.append((t, time.time()))
            for r in snap:
                if r["answered"] is None:   # answered, or not, after the read
                    r["answered"] = "unknown"
            self.kept.extend(snap)

    def _post(self, path, obj):
        req = urllib.request.Request(self.url + path, json.dumps(obj).encode(),
                                     {"Content-Type": "application/json"})
        urllib.request.urlopen(req, timeout=5, context=self.ctx).read()

    def script(self, to, *answers):
        """Queues the answers to the next requests for number `to`."""
        self._post("/_fake/script", {"to": to, "answers": list(answers)})

    def requests(self, to=None):
        """What the running fake recorded (for number `to`, or all)."""
        q = "?to=" + urllib.request.quote(to) if to else ""
        with urllib.request.urlopen(self.url + "/_fake/requests" + q,
                                    timeout=10, context=self.ctx) as r:
            return json.loads(r.read())

    def all_requests(self):
        return self.kept + self.requests()
