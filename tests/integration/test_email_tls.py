"""mfa-email over TLS with AUTH, against a small aiosmtpd server of the
test's own (the shared catcher speaks plain SMTP only): STARTTLS required,
implicit TLS (smtps://), certificate verification with smtp.ca_file, and
AUTH with MFA_SMTP_PASSWORD. A certificate the worker cannot verify and a
refused password are temporary failures: nothing is sent, the job waits
in the retry tiers for the set-up to be fixed.

The certificate is made with the openssl command for the test's lifetime.
"""
import shutil
import socket
import ssl
import subprocess
import time

import pytest

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from conftest import delivery, wait_delivery
from test_email import dispatch_code, make_code, make_user, new_addr

USER, PASSWORD = "mfa-relay", "s3cret-relay-pw"

pytestmark = [
    pytest.mark.skipif(shutil.which("openssl") is None,
                       reason="openssl command missing"),
    # the smtps server relaxes aiosmtpd's STARTTLS-only AUTH rule
    pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS"),
]


class Box:
    """aiosmtpd handler: keeps what it accepted."""

    def __init__(self):
        self.mails = []

    async def handle_DATA(self, server, session, envelope):
        self.mails.append({"rcpt": list(envelope.rcpt_tos),
                           "data": envelope.original_content,
                           "tls": session.ssl is not None,
                           "auth": session.authenticated})
        return "250 2.0.0 Ok: queued as TLS%d" % len(self.mails)


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = (isinstance(auth_data, LoginPassword) and
          auth_data.login == USER.encode() and
          auth_data.password == PASSWORD.encode())
    # handled=False: aiosmtpd answers the refusal itself (535)
    return AuthResult(success=ok, handled=False)


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    key, crt = str(d / "key.pem"), str(d / "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-keyout", key, "-out", crt, "-days", "2",
                    "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost"],
                   check=True, capture_output=True)
    return key, crt


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(cert, implicit):
    key, crt = cert
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(crt, key)
    box = Box()
    port = free_port()
    kw = dict(hostname="127.0.0.1", port=port, authenticator=authenticator,
              auth_required=True, server_hostname="localhost")
    if implicit:
        # aiosmtpd only counts STARTTLS as TLS for its AUTH rule
        kw.update(ssl_context=ctx, auth_require_tls=False)
    else:
        kw.update(tls_context=ctx, require_starttls=True)
    c = Controller(box, **kw)
    c.start()
    return c, box, port


def wait_box(box, n=1, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline and len(box.mails) < n:
        time.sleep(0.05)
    return box.mails


@pytest.mark.parametrize("implicit", [False, True], ids=["starttls", "smtps"])
def test_tls_and_auth(workers, bus, db, cert, implicit):
    c, box, port = start_server(cert, implicit)
    try:
        w = workers("mfa-email",
                    MFA_SMTP_URL="%s://localhost:%d" % (
                        "smtps" if implicit else "smtp", port),
                    MFA_SMTP_STARTTLS="required", MFA_SMTP_USERNAME=USER,
                    MFA_SMTP_PASSWORD=PASSWORD, MFA_SMTP_CA_FILE=cert[1])
        addr = new_addr("tls")
        cid = make_user(db, addr)
        lid, did, exp = make_code(db, cid)
        dispatch_code(bus, cid, lid, did, exp, code="975310")
        row = wait_delivery(db, did, "sent")
        mails = wait_box(box)
        assert len(mails) == 1
        assert mails[0]["rcpt"] == [addr]
        assert mails[0]["auth"]
        # (on smtps:// the server speaks nothing but TLS; aiosmtpd marks
        # only STARTTLS sessions)
        assert implicit or mails[0]["tls"]
        assert b"975310" in mails[0]["data"]
        assert row["provider_message_id"] == "TLS1"
        assert PASSWORD not in w.logs()
    finally:
        c.stop()


def test_untrusted_certificate_is_not_used(workers, bus, db, cert):
    c, box, port = start_server(cert, False)
    try:
        # no smtp.ca_file: the system's CAs do not know this certificate
        workers("mfa-email", MFA_SMTP_URL="smtp://localhost:%d" % port,
                MFA_SMTP_STARTTLS="required", MFA_SMTP_USERNAME=USER,
                MFA_SMTP_PASSWORD=PASSWORD, MFA_RETRY_DELAYS_SECONDS="30")
        addr = new_addr("untrusted")
        cid = make_user(db, addr)
        lid, did, exp = make_code(db, cid)
        dispatch_code(bus, cid, lid, did, exp)
        deadline = time.time() + 20
        while time.time() < deadline and not delivery(db, did)["attempts"]:
            time.sleep(0.1)
        row = delivery(db, did)
        assert row["status"] == "queued" and row["attempts"] == 1
        assert row["last_error"].startswith("connect:")
        assert box.mails == []
    finally:
        c.stop()


def test_wrong_password_is_a_temporary_failure(workers, bus, db, cert):
    c, box, port = start_server(cert, False)
    try:
        w = workers("mfa-email", MFA_SMTP_URL="smtp://localhost:%d" % port,
                    MFA_SMTP_STARTTLS="required", MFA_SMTP_USERNAME=USER,
                    MFA_SMTP_PASSWORD="not-the-password",
                    MFA_SMTP_CA_FILE=cert[1], MFA_RETRY_DELAYS_SECONDS="30")
        addr = new_addr("auth")
        cid = make_user(db, addr)
        lid, did, exp = make_code(db, cid)
        dispatch_code(bus, cid, lid, did, exp)
        deadline = time.time() + 20
        while time.time() < deadline and not delivery(db, did)["attempts"]:
            time.sleep(0.1)
        row = delivery(db, did)
        assert row["status"] == "queued" and row["attempts"] == 1
        assert row["last_error"].startswith("535")
        assert box.mails == []
        assert "not-the-password" not in w.logs()
    finally:
        c.stop()
