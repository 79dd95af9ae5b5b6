#!/bin/sh
# Runs the fault suite (tests/fault) against private servers, like
# scripts/run-integration.sh: starts RabbitMQ, PostgreSQL and the SMTP
# catcher under var/fault-servers-<pid> on free ports (tests/servers.sh),
# runs pytest with Debian's python3 (output not captured: the tests print
# their counts), and stops exactly what it started, whatever the outcome
# (tests/lib/suite.sh). The cluster test starts and stops its own
# three-node RabbitMQ cluster (tests/fault/cluster.sh) under the same
# directory; should the run end first, the exit stops it too.
#
# Usage: sh tests/fault/run.sh [pytest args]   (make check-faults)
# Knobs: MFA_FAULT_LOGINS (600), MFA_FAULT_STREAM_SECONDS (120),
# MFA_CLUSTER_LOGINS (150). The last run's counts are kept in
# var/fault-report.json and its worker logs under var/fault-logs/.
set -u
cd "$(dirname "$0")/../.." || exit 1
REPO=$(pwd)
DIR=$REPO/var/fault-servers-$$

# shellcheck disable=SC2317  # called at exit (tests/lib/suite.sh)
stop_cluster() { sh tests/fault/cluster.sh stop "$DIR/cluster" --clean; }

# shellcheck source=tests/lib/suite.sh
. tests/lib/suite.sh
suite_start faults "$DIR" stop_cluster
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
