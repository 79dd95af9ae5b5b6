#!/bin/sh
# make run: try Portal MFA on this machine.
#
# Starts private RabbitMQ, PostgreSQL and an SMTP catcher under var/servers
# (tests/servers.sh), applies the schema, creates var/master.key when there
# is none, starts the workers, plays a short demo (promote a contact, log
# in, get a code by email from the catcher, submit it, see "verified"),
# then shows the workers' logs until Ctrl-C, which stops everything this
# script started. MFA_RUN_DEMO_ONLY=1 exits after the demo; MFA_RUN_DIR
# puts the servers and logs elsewhere than var/servers (for tests).
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BIN=$ROOT/build/bin
DIR=${MFA_RUN_DIR:-$ROOT/var/servers}
LOGS=$DIR/log
PY=/usr/bin/python3
PIDS=""

say() { printf '\033[1m== %s\033[0m\n' "$*"; }

stop_all() {
    trap - INT TERM EXIT
    say "stopping"
    for p in $PIDS; do kill -TERM "$p" 2>/dev/null; done
    for p in $PIDS; do wait "$p" 2>/dev/null; done
    [ -n "${TAILPID:-}" ] && kill "$TAILPID" 2>/dev/null
    sh tests/servers.sh stop "$DIR" >/dev/null 2>&1
    say "stopped"
}
trap stop_all INT TERM EXIT

mkdir -p var "$LOGS"
say "starting RabbitMQ, PostgreSQL and the SMTP catcher ($DIR)"
sh tests/servers.sh start "$DIR" >/dev/null || { echo "servers failed; see $DIR"; exit 1; }
# shellcheck disable=SC1091
. "$DIR/env"
ADMIN_DSN=$MFA_POSTGRES_CONNINFO
export MFA_KEYS_MASTER_KEY_FILE="$ROOT/var/master.key"
if [ ! -f var/master.key ]; then
    say "creating var/master.key (32 random bytes, mode 0600)"
    (umask 077 && head -c 32 /dev/urandom > var/master.key)
fi

say "applying the schema"
"$BIN/mfactl" migrate || exit 1
export MFA_POSTGRES_CONNINFO=$(printf '%s' "$ADMIN_DSN" | sed 's/user=[^ ]*/user=mfa_worker/')

for w in contact-sync codes email sms; do
    if [ -x "$BIN/mfa-$w" ]; then
        "$BIN/mfa-$w" >>"$LOGS/mfa-$w.log" 2>&1 &
        PIDS="$PIDS $!"
        echo "started mfa-$w (pid $!, log $LOGS/mfa-$w.log)"
    fi
done
sleep 1

demo() {
    CONTACT="demo-$(date +%s)"
    say "CRM: contact.promoted $CONTACT (email demo@portal.example)"
    "$BIN/mfa-publish" contact.promoted --data "{\"contact_id\":\"$CONTACT\",\"organization_id\":\"org-demo\",\"display_name\":\"Demo User\",\"email\":\"demo@portal.example\",\"phone\":\"+31 6 12345678\",\"locale\":\"en\"}" >/dev/null || return 1
    "$BIN/mfa-publish" user.email_confirmed --data "{\"contact_id\":\"$CONTACT\",\"email\":\"demo@portal.example\"}" >/dev/null || return 1
    sleep 1
    LOGIN=$($PY -c 'import uuid; print(uuid.uuid4())')
    say "portal: login.started $LOGIN"
    "$BIN/mfa-publish" login.started --wait=10 --data "{\"login_id\":\"$LOGIN\",\"contact_id\":\"$CONTACT\"}" || return 1
    say "portal: the user picks email -> login.code_requested"
    "$BIN/mfa-publish" login.code_requested --wait=10 --data "{\"login_id\":\"$LOGIN\",\"method\":\"email\"}" || return 1
    say "user: reading the email from the SMTP catcher"
    CODE=""
    for _ in $(seq 1 50); do
        CODE=$($PY - "$MFA_TEST_SMTP_SPOOL" <<'EOF'
import email, glob, os, re, sys
from email import policy
files = sorted(glob.glob(os.path.join(sys.argv[1], "*.eml")), key=os.path.getmtime)
for f in reversed(files):
    m = email.message_from_binary_file(open(f, "rb"), policy=policy.default)
    if "demo@portal.example" not in str(m["To"]):
        continue
    body = m.get_body(("plain",)).get_content()
    hit = re.search(r"\b(\d{6,10})\b", body)
    if hit:
        print("Subject: %s" % m["Subject"], file=sys.stderr)
        print(hit.group(1))
        break
EOF
)
        [ -n "$CODE" ] && break
        sleep 0.2
    done
    [ -n "$CODE" ] || { echo "no email arrived"; return 1; }
    echo "the email holds a ${#CODE}-digit code"
    say "portal: login.code_submitted"
    "$BIN/mfa-publish" login.code_submitted --wait=10 --data "{\"login_id\":\"$LOGIN\",\"code\":\"$CODE\"}" || return 1
}

if [ -x "$BIN/mfa-publish" ] && [ -x "$BIN/mfa-codes" ] && [ -x "$BIN/mfa-email" ]; then
    if demo; then say "demo done: verified"; else say "demo failed (see var/log)"; fi
else
    say "demo skipped: mfa-publish, mfa-codes or mfa-email not built"
fi
[ "${MFA_RUN_DEMO_ONLY:-0}" = 1 ] && exit 0

say "workers running; logs follow (Ctrl-C stops everything)"
tail -n 0 -F "$LOGS"/*.log &
TAILPID=$!
wait "$TAILPID"
