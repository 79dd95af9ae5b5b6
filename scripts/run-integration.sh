#!/bin/sh
# Runs the integration suite against real servers: starts RabbitMQ,
# PostgreSQL and the SMTP catcher under a private directory on free ports
# (tests/servers.sh), runs pytest with Debian's python3, and stops exactly
# what it started, whatever the outcome.
set -u
cd "$(dirname "$0")/.."
BUILD=${MFA_BUILD:-build}
DIR=$(pwd)/var/test-servers-$$
PY=/usr/bin/python3

cleanup() {
    sh tests/servers.sh stop "$DIR" >/dev/null 2>&1
    rm -rf "$DIR"
}
trap cleanup EXIT INT TERM

if ! sh tests/servers.sh start "$DIR" >/dev/null; then
    echo "integration: could not start the test servers (logs in $DIR)" >&2
    exit 1
fi
# shellcheck disable=SC1090,SC1091
. "$DIR/env"
export MFA_BUILD_DIR="$(pwd)/$BUILD"
export MFA_REPO_DIR="$(pwd)"
# Prism and Twilio's OpenAPI (tests/package.json) for the SMS contract
# tests; without them those tests are skipped, the rest still runs.
sh scripts/npm-deps.sh ||
    echo "integration: npm test tools not installed; Prism tests skip" >&2
"$PY" -m pytest -q -p no:cacheprovider tests/integration "$@"
rc=$?
# pytest's 5 means no test ran: that is a failure here.
exit $rc
