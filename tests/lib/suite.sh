# shellcheck shell=sh
# tests/lib/suite.sh - the frame of a test suite run against private
# servers, sourced by scripts/run-integration.sh and tests/fault/run.sh
# from the repository's top directory: start tests/servers.sh in a
# directory of the run's own, on free ports, export the servers' env and
# the build's, and stop exactly what was started when the script exits,
# whatever the outcome (a failed start included).

# shellcheck disable=SC2034  # used by the callers
PY=/usr/bin/python3

# suite_start LABEL DIR [BEFORE_STOP]: the servers in DIR (on failure:
# "LABEL: could not start ..." and exit 1), DIR/env, MFA_BUILD_DIR
# ($MFA_BUILD, default build) and MFA_REPO_DIR exported. At exit the
# command BEFORE_STOP runs first (what the suite itself started under DIR),
# then the servers stop and DIR, logs included, is removed.
suite_start() {
    SUITE_DIR=$2
    SUITE_BEFORE_STOP=${3:-:}
    trap suite_stop EXIT INT TERM
    if ! sh tests/servers.sh start "$SUITE_DIR" >/dev/null; then
        echo "$1: could not start the test servers (logs in $SUITE_DIR)" >&2
        exit 1
    fi
    # shellcheck disable=SC1091
    . "$SUITE_DIR/env"
    MFA_REPO_DIR=$(pwd)
    MFA_BUILD_DIR=$MFA_REPO_DIR/${MFA_BUILD:-build}
    export MFA_REPO_DIR MFA_BUILD_DIR
}

# shellcheck disable=SC2317  # called by the trap
suite_stop() {
    $SUITE_BEFORE_STOP >/dev/null 2>&1
    sh tests/servers.sh stop "$SUITE_DIR" --clean >/dev/null 2>&1
    rm -rf "$SUITE_DIR"
}
