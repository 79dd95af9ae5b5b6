#!/bin/sh
# Runs the integration suite against real servers: starts RabbitMQ,
# PostgreSQL and the SMTP catcher under a private directory on free ports
# (tests/servers.sh), runs pytest with Debian's python3, and stops exactly
# what it started, whatever the outcome (tests/lib/suite.sh).
set -u
cd "$(dirname "$0")/.." || exit 1
# shellcheck source=tests/lib/suite.sh
. tests/lib/suite.sh
suite_start integration "$(pwd)/var/test-servers-$$"
# Prism and Twilio's OpenAPI (tests/package.json) for the SMS contract
# tests; without them those tests are skipped, the rest still runs.
sh scripts/npm-deps.sh ||
    echo "integration: npm test tools not installed; Prism tests skip" >&2
"$PY" -m pytest -q -p no:cacheprovider tests/integration "$@"
rc=$?
# pytest's 5 means no test ran: that is a failure here.
exit $rc
