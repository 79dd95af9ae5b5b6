"""compose.yaml, Dockerfile and .env.example, checked without an engine.

`docker-compose config` (Debian's docker-compose, scripts/deps.sh) parses
and validates the file against the Compose schema and resolves the
variables from .env.example, so a typo, a bad dependency condition or a
variable that is not in .env.example fails here. There is no Docker engine
in the test environment: the images are not built or run.
"""
import os
import re
import shutil
import subprocess

import pytest

yaml = pytest.importorskip("yaml")

REPO = os.environ.get("MFA_REPO_DIR", os.getcwd())
COMPOSE = shutil.which("docker-compose")
WORKERS = ["mfa-contact-sync", "mfa-codes", "mfa-email", "mfa-sms"]

pytestmark = pytest.mark.skipif(COMPOSE is None,
                                reason="docker-compose not installed")


@pytest.fixture(scope="module")
def config():
    r = subprocess.run([COMPOSE, "-f", "compose.yaml", "--env-file",
                        ".env.example", "--profile", "tools", "config"],
                       cwd=REPO, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    # every variable used is defined in .env.example (or has a default)
    assert "is not set" not in r.stderr, r.stderr
    return yaml.safe_load(r.stdout)


def test_services_and_their_order(config):
    s = config["services"]
    assert set(s) == {"rabbitmq", "postgres", "mailpit", "migrate",
                      "mfactl", *WORKERS}
    assert "management" in s["rabbitmq"]["image"]
    assert s["postgres"]["image"] == "postgres:15"
    assert "mailpit" in s["mailpit"]["image"]
    assert s["migrate"]["command"] == ["mfactl", "migrate"]
    assert s["migrate"]["depends_on"]["postgres"]["condition"] == \
        "service_healthy"
    for w in WORKERS:
        assert s[w]["command"] == [w]
        assert s[w]["build"]["context"] == REPO
        dep = s[w]["depends_on"]
        assert dep["migrate"]["condition"] == "service_completed_successfully"
        assert dep["rabbitmq"]["condition"] == "service_healthy"
        assert dep["postgres"]["condition"] == "service_healthy"
        assert s[w]["restart"] == "unless-stopped"
        assert s[w]["healthcheck"]["test"] == ["CMD", w, "--check"]
        env = s[w]["environment"]
        assert "user=mfa_worker" in env["MFA_POSTGRES_CONNINFO"]
        assert env["MFA_AMQP_URL"].startswith("amqp://")
        assert "MFA_KEYS_MASTER_KEY" in env
        # a worker gets none of the other roles' secrets
        assert "POSTGRES_PASSWORD" not in env
        assert "MFA_OPERATOR_DB_PASSWORD" not in env
    assert s["mfa-email"]["depends_on"]["mailpit"]["condition"] == \
        "service_healthy"
    assert "MFA_SMS_TWILIO_API_BASE" in s["mfa-sms"]["environment"]
    for name in ("rabbitmq", "postgres", "mailpit"):
        assert s[name]["healthcheck"]["test"][0] == "CMD", name
    assert s["mfactl"]["profiles"] == ["tools"]
    assert "user=mfa_operator" in \
        s["mfactl"]["environment"]["MFA_POSTGRES_CONNINFO"]


def test_ports_are_local_only(config):
    for name, svc in config["services"].items():
        for p in svc.get("ports", []):
            text = p if isinstance(p, str) else "%s:%s" % (
                p.get("host_ip"), p.get("published"))
            assert text.startswith("127.0.0.1:"), (name, p)


def test_no_secret_is_committed():
    with open(os.path.join(REPO, "compose.yaml")) as f:
        compose = f.read()
    # passwords and keys only as ${VARIABLES}
    for line in compose.splitlines():
        if re.search(r"(PASS|PASSWORD|KEY)\w*:\s", line):
            assert "${" in line, line
    env = {}
    with open(os.path.join(REPO, ".env.example")) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                k, _, v = line.partition("=")
                env[k] = v
    assert env["MFA_MASTER_KEY"] == ""
    for k, v in env.items():
        if "PASSWORD" in k and k != "MFA_SMTP_PASSWORD":
            assert v == "change-me", k


def test_dockerfile_is_a_two_stage_debian_12_build():
    with open(os.path.join(REPO, "Dockerfile")) as f:
        text = f.read()
    stages = re.findall(r"^FROM\s+(\S+)", text, re.M)
    assert stages == ["debian:12-slim", "debian:12-slim"]
    build, runtime = text.split("\nFROM ", 2)[1:]
    assert "libphonenumber-dev" in build and "make" in build
    assert "-dev" not in runtime
    assert "COPY --from=build" in runtime and "USER mfa" in runtime
    # every worker of the tree is built by the make line
    for w in os.listdir(os.path.join(REPO, "workers")):
        assert os.path.exists(os.path.join(REPO, "workers", w, "main.c"))
    assert "workers/*/" in build
