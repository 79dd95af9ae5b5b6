"""`make run`: from the repository, start everything, play the demo (promote,
log in, email code from the SMTP catcher, submit, verified), keep running,
and stop everything it started on Ctrl-C (SIGINT)."""
import os
import signal
import subprocess
import time

from conftest import REPO


def test_make_run_demo_verifies_and_ctrl_c_stops_everything(tmp_path):
    rundir = os.path.join(REPO, "var", "run-test-%d" % os.getpid())
    env = dict(os.environ)
    for k in list(env):
        if k.startswith("MFA_"):
            del env[k]          # make run uses its own servers and config
    env["MFA_RUN_DIR"] = rundir
    out = open(tmp_path / "run.log", "w+b")
    p = subprocess.Popen(["make", "--no-print-directory", "run"], cwd=REPO,
                         env=env, stdout=out, stderr=subprocess.STDOUT,
                         start_new_session=True)
    try:
        deadline = time.time() + 240
        text = ""
        while time.time() < deadline:
            out.seek(0)
            text = out.read().decode(errors="replace")
            if "logs follow" in text or "demo failed" in text or p.poll() is not None:
                break
            time.sleep(0.5)
        assert "demo done: verified" in text, text[-4000:]
        assert "workers running; logs follow" in text
        assert '"status":"verified"' in text
        # Ctrl-C reaches the whole foreground process group
        os.killpg(p.pid, signal.SIGINT)
        assert p.wait(90) is not None
        out.seek(0)
        text = out.read().decode(errors="replace")
        assert "== stopped" in text, text[-3000:]
        st = subprocess.run(["sh", os.path.join(REPO, "tests", "servers.sh"),
                             "status", rundir], capture_output=True, text=True)
        assert st.returncode != 0, st.stdout   # nothing left running
        # no code in the demo's output
        assert "the email holds a 6-digit code" in text
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
        subprocess.run(["sh", os.path.join(REPO, "tests", "servers.sh"),
                        "stop", rundir, "--clean"], capture_output=True)
