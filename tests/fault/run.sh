#!/bin/sh
# Runs the fault suite (tests/fault) against private servers, like
# scripts/run-integration.sh: starts RabbitMQ, PostgreSQL and the SMTP
# catcher under var/fault-servers-<pid> on free ports (tests/servers.sh),
# runs pytest with Debian's python3 (output not captured: the tests print
# their counts), and stops exactly what it started, whatever the outcome.
# The cluster test starts and stops its own three-node RabbitMQ cluster
# (tests/fault/cluster.sh) under the same directory.
#
# Usage: sh tests/fault/run.sh [pytest args]   (make check-faults)
# Knobs: MFA_FAULT_LOGINS (600), MFA_FAULT_STREAM_SECONDS (120),
# MFA_CLUSTER_LOGINS (150). The last run's counts are kept in
# var/fault-report.json and its worker logs under var/fault-logs/.
set -u
cd "$(dirname "$0")/../.." || exit 1
REPO=$(pwd)
BUILD=${MFA_BUILD:-build}
DIR=$REPO/var/fault-servers-$$
PY=/usr/bin/python3

# shellcheck disable=SC2317  # called by the trap
cleanup() {
    sh tests/fault/cluster.sh stop "$DIR/cluster" --clean >/dev/null 2>&1
    sh tests/servers.sh stop "$DIR" --clean >/dev/null 2>&1
    rm -rf "$DIR"
}
trap cleanup EXIT INT TERM

if ! sh tests/servers.sh start "$DIR" >/dev/null; then
    echo "faults: could not start the test servers (logs in $DIR)" >&2
    exit 1
fi
# shellcheck disable=SC1090,SC1091
. "$DIR/env"
export MFA_BUILD_DIR="$REPO/$BUILD"
export MFA_REPO_DIR="$REPO"
export MFA_FAULT_CLUSTER_DIR="$DIR/cluster"
export MFA_FAULT_REPORT="$REPO/var/fault-report.json"
"$PY" -m pytest -q -s -p no:cacheprovider --basetemp="$REPO/var/fault-logs" \
    tests/fault "$@"
rc=$?
if [ "$rc" -ne 0 ]; then
    # what the servers saw, next to the workers' logs
    mkdir -p var/fault-logs/servers
    cp -r "$DIR/smtp" var/fault-logs/servers/ 2>/dev/null
    cp "$DIR/pg/postgres.log" var/fault-logs/servers/ 2>/dev/null
    cp -r "$DIR/rabbitmq/log" var/fault-logs/servers/rabbitmq 2>/dev/null
    echo "faults: failed; logs under var/fault-logs" >&2
fi
exit $rc
