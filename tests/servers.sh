#!/bin/sh
# tests/servers.sh — private RabbitMQ, PostgreSQL 15 and SMTP catcher for
# tests and local runs, as plain processes under one directory, on free
# ports, without systemd. Several copies (different DIRs) run side by side.
#
# Usage: sh tests/servers.sh COMMAND DIR
#
#   start DIR          start all three (no-op for those already running) and
#                      print DIR/env on stdout; progress goes to stderr
#   stop DIR [--clean] stop exactly what this DIR started (idempotent);
#                      --clean also deletes DIR and its port reservations
#   env DIR            print DIR/env (lines `export KEY=VALUE`)
#   status DIR         one line per server; exit 0 only if all run
#   {start,stop,restart}-{rabbitmq,postgres,smtp} DIR
#                      one server, same ports and data
#   kill-rabbitmq DIR  SIGKILL the broker (crash, no clean shutdown)
#   pause-rabbitmq DIR / resume-rabbitmq DIR
#                      SIGSTOP / SIGCONT the broker (a hung, not dead, peer)
#   kill-postgres DIR  pg_ctl stop -m immediate (crash)
#   kill-smtp DIR      SIGKILL the catcher
#   rabbitmqctl DIR ARGS...   rabbitmqctl against this DIR's node
#   psql DIR ARGS...          psql to database mfa as mfa_admin
#
# Use it from a test:   eval "$(sh tests/servers.sh start var/servers)"
# or:                   . var/servers/env
# Keys in DIR/env: MFA_AMQP_URL MFA_POSTGRES_CONNINFO (double-quoted)
# MFA_SMTP_URL MFA_SMTP_STARTTLS MFA_TEST_DIR MFA_TEST_SMTP_SPOOL
# MFA_TEST_SMTP_CONTROL MFA_TEST_SMTP_PORT MFA_TEST_RABBIT_NODE
# MFA_TEST_AMQP_PORT MFA_TEST_PG_PORT MFA_TEST_PG_SOCKET_DIR.
# SMTP failure injection: see tests/servers/smtp_catcher.py (control.json).
#
# Layout of DIR: state (ports, node), env, rabbitmq/ (config, mnesia, log,
# pid files, epmd), rabbitmq-home/ (Erlang cookie), pg/ (data/, socket,
# postgres.log), smtp/ (spool/, control.json, smtp.log, pid).
# Environment knobs: MFA_SERVERS_TIMEOUT (s, default 90) for each wait;
# MFA_SERVERS_PORT_REGISTRY (default /tmp/mfa-servers-ports) where copies
# reserve their ports so that two starts at once never pick the same one.
#
# Works as root (PostgreSQL then runs as the `postgres` OS user, so DIR
# must be reachable by it) and as an ordinary user.

set -eu

PG_BIN=/usr/lib/postgresql/15/bin

HERE=$(cd "$(dirname "$0")" && pwd -P)
REPO=$(cd "$HERE/.." && pwd -P)
CATCHER=$HERE/servers/smtp_catcher.py
IS_ROOT=0
[ "$(id -u)" -eq 0 ] && IS_ROOT=1
START_OK=1 STARTED_SMTP=0 STARTED_PG=0 STARTED_RMQ=0 STARTED_EPMD=0

# alive, has_env, kill_verified, ...; the port registry; the RabbitMQ node
# shellcheck source=tests/lib/proc.sh
. "$HERE/lib/proc.sh"
# shellcheck source=tests/lib/ports.sh
. "$HERE/lib/ports.sh"
# shellcheck source=tests/lib/rabbitmq.sh
. "$HERE/lib/rabbitmq.sh"

log() { printf 'servers.sh: %s\n' "$*" >&2; }
die() { printf 'servers.sh: error: %s\n' "$*" >&2; exit 1; }

usage() {
    sed -n '2,/^$/s/^# \{0,1\}//p' "$0" >&2
    exit 2
}

# ---- helpers ------------------------------------------------------------

set_dir() {
    [ -n "${1:-}" ] || usage
    case $1 in
        *[!A-Za-z0-9_./+,:@=-]*)
            die "DIR '$1' has characters this script does not quote" \
                "(use letters, digits and ._/+,:@=- only)" ;;
    esac
    case $1 in
        /*) DIR=$1 ;;
        *) DIR=$(pwd -P)/$1 ;;
    esac
    if [ -d "$DIR" ]; then
        DIR=$(cd "$DIR" && pwd -P)
    fi
    R=$DIR/rabbitmq
    RHOME=$DIR/rabbitmq-home
    EPMD_DIR=$R
    PGD=$DIR/pg
    PGDATA_DIR=$PGD/data
    SM=$DIR/smtp
    STATE=$DIR/state
    ENVF=$DIR/env
}

make_dir() {
    _old_umask=$(umask)
    umask 022
    mkdir -p "$DIR"
    umask "$_old_umask"
    DIR=$(cd "$DIR" && pwd -P)
    set_dir "$DIR"
    chmod 755 "$DIR"
}

# lock_dir: one servers.sh at a time per DIR. Servers are started with fd 9
# closed; should one still hold the lock (started by an older copy of this
# script), it is ignored: only another servers.sh counts as a holder.
lock_dir() {
    exec 9>>"$DIR/.lock"
    command -v flock >/dev/null 2>&1 || return 0
    _n=6000
    while ! flock -n 9; do
        _other=0
        for _fd in /proc/[0-9]*/fd/*; do
            [ "$(readlink "$_fd" 2>/dev/null)" = "$DIR/.lock" ] || continue
            _p=${_fd#/proc/}
            _p=${_p%%/*}
            [ "$_p" = $$ ] && continue
            case $(cmdline "$_p") in
                *servers.sh*) _other=1; break ;;
            esac
        done
        if [ "$_other" -eq 0 ]; then
            log "warning: $DIR/.lock is held by a server process, not by" \
                "another servers.sh; going on without the lock"
            return 0
        fi
        [ "$_n" -le 0 ] && die "cannot lock $DIR/.lock (another servers.sh?)"
        _n=$((_n - 1))
        sleep 0.1
    done
}

load_state() {
    NODE='' AMQP_PORT='' DIST_PORT='' EPMD_PORT='' CTL_PORT_MIN='' CTL_PORT_MAX=''
    PG_PORT='' SMTP_PORT=''
    if [ -f "$STATE" ]; then
        # shellcheck disable=SC1090
        . "$STATE"
    fi
}

save_state() {
    cat >"$STATE.tmp" <<EOF
# written by tests/servers.sh; ports stay fixed for this DIR
NODE=$NODE
AMQP_PORT=$AMQP_PORT
DIST_PORT=$DIST_PORT
EPMD_PORT=$EPMD_PORT
CTL_PORT_MIN=$CTL_PORT_MIN
CTL_PORT_MAX=$CTL_PORT_MAX
PG_PORT=$PG_PORT
SMTP_PORT=$SMTP_PORT
EOF
    mv -f "$STATE.tmp" "$STATE"
}

# ---- ports --------------------------------------------------------------
# Picked and reserved once per DIR through the registry of tests/lib/ports.sh
# and kept in DIR/state, so a restart finds its server on the same port.

# ensure_state: node name and ports, chosen once per DIR.
ensure_state() {
    load_state
    _changed=0
    if [ -z "$NODE" ]; then
        _h=$(printf '%s' "$DIR" | md5sum | cut -c1-10)
        NODE=mfa-$_h@localhost
        _changed=1
    fi
    _need=
    [ -n "$AMQP_PORT" ] || _need="$_need AMQP_PORT"
    [ -n "$DIST_PORT" ] || _need="$_need DIST_PORT"
    [ -n "$EPMD_PORT" ] || _need="$_need EPMD_PORT"
    [ -n "$CTL_PORT_MIN" ] || _need="$_need CTL_PORT_MIN:5"
    [ -n "$PG_PORT" ] || _need="$_need PG_PORT"
    [ -n "$SMTP_PORT" ] || _need="$_need SMTP_PORT"
    if [ -n "$_need" ]; then
        # shellcheck disable=SC2086
        ports_pick $_need
        CTL_PORT_MAX=$((CTL_PORT_MIN + 4))
        _changed=1
    fi
    [ "$_changed" -eq 0 ] || save_state
}

# repick_if_taken WHAT VAR...: called only when WHAT is down. If another
# program now listens on one of its ports, a full `start` takes new ones
# (the env file is rewritten); a single start-WHAT fails instead.
repick_if_taken() {
    _what=$1
    shift
    _ports=
    for _v in "$@"; do
        eval "_ports=\"\$_ports \${$_v}\""
    done
    # shellcheck disable=SC2086
    ports_free $_ports && return 0
    if [ "$ALLOW_REPICK" -ne 1 ]; then
        die "$_what: a port of$_ports is in use by another program;" \
            "run a full 'start' (takes new ports) or 'stop --clean'"
    fi
    log "$_what: a port of$_ports is taken by another program, picking new"
    _specs=
    for _v in "$@"; do
        if [ "$_v" = CTL_PORT_MIN ]; then
            _specs="$_specs CTL_PORT_MIN:5"
        else
            _specs="$_specs $_v"
        fi
    done
    # shellcheck disable=SC2086
    ports_pick $_specs
    CTL_PORT_MAX=$((CTL_PORT_MIN + 4))
    save_state
}

# ---- RabbitMQ -----------------------------------------------------------
# The node's environment, epmd, start and wait: tests/lib/rabbitmq.sh, with
# R, RHOME, NODE and the ports of this DIR (set_dir, load_state).

start_rabbitmq() {
    if [ -n "$(rmq_pid)" ]; then
        if ports_listening "$AMQP_PORT"; then
            log "rabbitmq: already running ($NODE, port $AMQP_PORT)"
            return 0
        fi
        log "rabbitmq: node runs but does not listen yet; waiting"
        rmq_wait rabbitmq
        return 0
    fi
    _stray=$(rmq_stray_pids)
    if [ -n "$_stray" ]; then
        log "rabbitmq: stopping a stray node of this DIR: $_stray"
        for _p in $_stray; do kill_verified "$_p"; done
    fi
    if [ -z "$(rmq_epmd_pid)" ]; then
        repick_if_taken rabbitmq AMQP_PORT DIST_PORT EPMD_PORT
    else
        repick_if_taken rabbitmq AMQP_PORT DIST_PORT
    fi
    rmq_write_config
    [ -n "$(rmq_epmd_pid)" ] || STARTED_EPMD=1
    rmq_epmd_start
    STARTED_RMQ=1
    log "rabbitmq: starting $NODE on 127.0.0.1:$AMQP_PORT" \
        "(dist $DIST_PORT, epmd $EPMD_PORT)"
    RABBIT_T0=$(date +%s)
    rmq_launch rabbitmq
    RABBIT_STARTING=1
}

# A clean shutdown through rabbitmqctl stop (its data stays consistent for
# the next start), signals if that fails.
stop_rabbitmq() {
    [ -n "$NODE" ] || return 0
    _p=$(rmq_pid)
    if [ -n "$_p" ]; then
        kill -CONT "$_p" 2>/dev/null || true
        if [ -n "$(rmq_epmd_pid)" ] && (cd "$R" && rmq_env timeout 60 \
            "$RMQ_BIN/rabbitmqctl" -n "$NODE" -q stop "$R/rabbit.pid" \
            >>"$R/log/stop.out" 2>&1 9>&-)
        then
            :
        else
            log "rabbitmq: rabbitmqctl stop failed, signalling pid $_p"
        fi
        alive "$_p" && kill_verified "$_p"
        log "rabbitmq: stopped ($NODE)"
    fi
    for _s in $(rmq_stray_pids); do
        log "rabbitmq: stopping stray node process $_s"
        kill_verified "$_s"
    done
    rm -f "$R/rabbit.pid"
}

stop_epmd() { rmq_epmd_stop "epmd (port $EPMD_PORT) stopped"; }

signal_rabbitmq() {
    _p=$(rmq_pid)
    [ -n "$_p" ] || die "rabbitmq: not running"
    kill "-$1" "$_p"
    log "rabbitmq: sent SIG$1 to pid $_p"
}

# ---- PostgreSQL ---------------------------------------------------------

pg_as() {
    if [ "$IS_ROOT" -eq 1 ]; then
        (cd / && runuser -u postgres -- "$@" 9>&-)
    else
        (cd / && "$@" 9>&-)
    fi
}

pg_pid() { pidfile_pid "$PGDATA_DIR/postmaster.pid" "* -D $PGDATA_DIR *"; }

# The postgres OS user must be able to reach DIR/pg. Directories of the
# repository (and DIR itself) get o+x; anything else is reported.
check_pg_traversal() {
    [ "$IS_ROOT" -eq 1 ] || return 0
    runuser -u postgres -- test -x "$PGD" -a -w "$PGD" 2>/dev/null && return 0
    _path=
    _rest=${PGD#/}
    _oldifs=$IFS
    IFS=/
    for _c in $_rest; do
        IFS=$_oldifs
        _path=$_path/$_c
        if ! runuser -u postgres -- test -x "$_path" 2>/dev/null; then
            case $_path/ in
                "$REPO"/*|"$DIR"/*)
                    log "postgres: chmod o+x $_path (so the postgres user" \
                        "can reach $PGD)"
                    chmod o+x "$_path" ;;
                *)
                    die "postgres: the 'postgres' OS user cannot enter" \
                        "$_path (PostgreSQL refuses to run as root and" \
                        "runs as 'postgres'): chmod o+x $_path, or choose" \
                        "a DIR under /tmp or inside the repository" ;;
            esac
        fi
        IFS=/
    done
    IFS=$_oldifs
    runuser -u postgres -- test -x "$PGD" -a -w "$PGD" 2>/dev/null ||
        die "postgres: the postgres user still cannot write $PGD"
}

prepare_pg_dir() {
    mkdir -p "$PGD"
    chmod 755 "$PGD"
    [ "$IS_ROOT" -eq 1 ] && chown postgres: "$PGD"
    check_pg_traversal
}

init_postgres() {
    prepare_pg_dir
    [ -s "$PGDATA_DIR/PG_VERSION" ] && return 0
    log "postgres: initdb $PGDATA_DIR"
    rm -rf "$PGDATA_DIR"
    _loc=--no-locale
    locale -a 2>/dev/null | grep -qix 'C.utf8' && _loc=--locale=C.UTF-8
    if ! pg_as "$PG_BIN/initdb" -D "$PGDATA_DIR" -U postgres -E UTF8 "$_loc" \
        -A trust --auth-local=trust --auth-host=trust \
        >"$PGD/initdb.log" 2>&1; then
        tail_log "$PGD/initdb.log"
        die "postgres: initdb failed"
    fi
    cat >>"$PGDATA_DIR/postgresql.conf" <<'EOF'

# ---- tests/servers.sh
listen_addresses = '127.0.0.1'
fsync = on
logging_collector = off
log_line_prefix = '%m [%p] %q%u@%d '
log_min_messages = warning
max_connections = 200
include_if_exists = 'servers-sh.conf'
EOF
}

write_pg_config() {
    cat >"$PGDATA_DIR/servers-sh.conf" <<EOF
# written by tests/servers.sh at each start
port = $PG_PORT
unix_socket_directories = '$PGD'
EOF
    [ "$IS_ROOT" -eq 1 ] && chown postgres: "$PGDATA_DIR/servers-sh.conf"
    return 0
}

start_postgres() {
    if [ -n "$(pg_pid)" ]; then
        log "postgres: already running (port $PG_PORT)"
        bootstrap_postgres
        return 0
    fi
    repick_if_taken postgres PG_PORT
    init_postgres
    write_pg_config
    log "postgres: starting on 127.0.0.1:$PG_PORT"
    STARTED_PG=1
    if ! pg_as "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -l "$PGD/postgres.log" \
        -w -t "$TIMEOUT" start >"$PGD/pg_ctl.out" 2>&1; then
        tail_log "$PGD/pg_ctl.out"
        tail_log "$PGD/postgres.log"
        die "postgres: pg_ctl start failed"
    fi
    bootstrap_postgres
}

psql_admin() {
    "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PGD" -p "$PG_PORT" \
        -U postgres "$@"
}

bootstrap_postgres() {
    if ! psql_admin -d postgres >"$PGD/bootstrap.out" 2>&1 <<'EOF'
SELECT 'CREATE ROLE mfa_admin SUPERUSER LOGIN'
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'mfa_admin')
\gexec
SELECT 'CREATE DATABASE mfa OWNER mfa_admin'
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'mfa')
\gexec
EOF
    then
        tail_log "$PGD/bootstrap.out"
        die "postgres: cannot create role mfa_admin / database mfa"
    fi
}

stop_postgres() {
    _mode=${1:-fast}
    _p=$(pg_pid)
    [ -n "$_p" ] || return 0
    if ! pg_as "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -m "$_mode" -w \
        -t "$TIMEOUT" stop >>"$PGD/pg_ctl.out" 2>&1; then
        log "postgres: pg_ctl stop failed; trying -m immediate"
        pg_as "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -m immediate -w -t 30 stop \
            >>"$PGD/pg_ctl.out" 2>&1 || true
    fi
    alive "$_p" && kill_verified "$_p"
    log "postgres: stopped (-m $_mode)"
}

# ---- SMTP catcher -------------------------------------------------------

smtp_pid() { pidfile_pid "$SM/pid" "*smtp_catcher.py* --dir $SM *"; }

start_smtp() {
    if [ -n "$(smtp_pid)" ]; then
        log "smtp: already running (port $SMTP_PORT)"
        return 0
    fi
    repick_if_taken smtp SMTP_PORT
    mkdir -p "$SM/spool"
    [ -f "$SM/control.json" ] || echo '{"mode": "ok"}' >"$SM/control.json"
    rm -f "$SM/pid"
    log "smtp: starting catcher on 127.0.0.1:$SMTP_PORT"
    STARTED_SMTP=1
    (cd "$SM" && exec setsid "$PY" "$CATCHER" --dir "$SM" \
        --port "$SMTP_PORT" >>"$SM/stdout.log" 2>&1 </dev/null 9>&-) &
    _launch=$!
    _n=$((TIMEOUT * 10))
    while [ -z "$(smtp_pid)" ]; do
        if ! alive "$_launch"; then
            tail_log "$SM/stdout.log"
            tail_log "$SM/smtp.log"
            die "smtp: the catcher exited during start-up"
        fi
        [ "$_n" -le 0 ] && die "smtp: catcher not up after ${TIMEOUT}s"
        _n=$((_n - 1))
        sleep 0.1
    done
    ports_listening "$SMTP_PORT" || die "smtp: catcher does not accept connections"
}

stop_smtp() {
    _p=$(smtp_pid)
    if [ -n "$_p" ]; then
        kill_verified "$_p"
        log "smtp: stopped"
    fi
    rm -f "$SM/pid"
}

kill_smtp() {
    _p=$(smtp_pid)
    [ -n "$_p" ] || { log "smtp: not running"; return 0; }
    kill -KILL "$_p"
    wait_gone "$_p" 10 || true
    rm -f "$SM/pid"
    log "smtp: killed (pid $_p)"
}

# ---- env file -----------------------------------------------------------

write_env() {
    cat >"$ENVF.tmp" <<EOF
export MFA_AMQP_URL=amqp://guest:guest@127.0.0.1:$AMQP_PORT/%2f
export MFA_POSTGRES_CONNINFO="host=127.0.0.1 port=$PG_PORT dbname=mfa user=mfa_admin"
export MFA_SMTP_URL=smtp://127.0.0.1:$SMTP_PORT
export MFA_SMTP_STARTTLS=off
export MFA_TEST_DIR=$DIR
export MFA_TEST_SMTP_SPOOL=$SM/spool
export MFA_TEST_SMTP_CONTROL=$SM/control.json
export MFA_TEST_SMTP_PORT=$SMTP_PORT
export MFA_TEST_RABBIT_NODE=$NODE
export MFA_TEST_AMQP_PORT=$AMQP_PORT
export MFA_TEST_PG_PORT=$PG_PORT
export MFA_TEST_PG_SOCKET_DIR=$PGD
EOF
    mv -f "$ENVF.tmp" "$ENVF"
}

# ---- commands -----------------------------------------------------------

need_state() {
    [ -f "$STATE" ] || die "$DIR has no servers (run: $0 start $DIR)"
    load_state
}

# A failed start stops again what it started itself (not what already ran).
start_failed() {
    _rc=$?
    trap - EXIT
    [ "$START_OK" -eq 1 ] && exit "$_rc"
    log "start failed; stopping what this start launched" \
        "(logs stay in $DIR)"
    [ "$STARTED_SMTP" -eq 1 ] && stop_smtp
    [ "$STARTED_PG" -eq 1 ] && stop_postgres fast
    [ "$STARTED_RMQ" -eq 1 ] && stop_rabbitmq
    [ "$STARTED_EPMD" -eq 1 ] && stop_epmd
    exit 1
}

cmd_start() {
    make_dir
    lock_dir
    ALLOW_REPICK=1
    ensure_state
    _t0=$(date +%s)
    RABBIT_STARTING=0
    START_OK=0 STARTED_SMTP=0 STARTED_PG=0 STARTED_RMQ=0 STARTED_EPMD=0
    trap start_failed EXIT
    trap 'exit 130' INT TERM
    [ -n "$(pg_pid)" ] || prepare_pg_dir
    start_rabbitmq          # returns while the node boots (~10 s)
    start_smtp
    start_postgres
    [ "$RABBIT_STARTING" -eq 1 ] && rmq_wait rabbitmq "$RABBIT_T0"
    write_env
    START_OK=1
    trap - EXIT INT TERM
    log "all servers up in $(($(date +%s) - _t0))s; env in $ENVF"
    cat "$ENVF"
}

cmd_stop() {
    [ -f "$STATE" ] || { log "nothing started in $DIR"; [ "$CLEAN" -eq 1 ] &&
        clean_dir; return 0; }
    lock_dir
    load_state
    stop_smtp
    stop_postgres fast
    stop_rabbitmq
    stop_epmd
    [ "$CLEAN" -eq 1 ] && clean_dir
    return 0
}

clean_dir() {
    ports_release
    if [ -d "$DIR" ]; then
        rm -rf "$DIR"
        log "removed $DIR"
    fi
}

cmd_status() {
    need_state
    _rc=0
    _p=$(rmq_pid)
    if [ -n "$_p" ] && ports_listening "$AMQP_PORT"; then
        _s="running (pid $_p)"
        kill -0 "$_p" 2>/dev/null && [ "$(sed 's/^.*) //' \
            "/proc/$_p/stat" | cut -c1)" = T ] && _s="PAUSED (pid $_p)"
        echo "rabbitmq: $_s node $NODE amqp 127.0.0.1:$AMQP_PORT epmd $EPMD_PORT"
    elif [ -n "$_p" ]; then
        echo "rabbitmq: starting or hung (pid $_p) node $NODE"; _rc=3
    else
        echo "rabbitmq: stopped (node $NODE, port $AMQP_PORT)"; _rc=3
    fi
    _p=$(pg_pid)
    if [ -n "$_p" ]; then
        echo "postgres: running (pid $_p) 127.0.0.1:$PG_PORT socket $PGD"
    else
        echo "postgres: stopped (port $PG_PORT)"; _rc=3
    fi
    _p=$(smtp_pid)
    if [ -n "$_p" ]; then
        echo "smtp:     running (pid $_p) 127.0.0.1:$SMTP_PORT spool $SM/spool"
    else
        echo "smtp:     stopped (port $SMTP_PORT)"; _rc=3
    fi
    return $_rc
}

one() {
    # one ACTION SERVER: a single-server command under the lock
    need_state
    lock_dir
    load_state
    ALLOW_REPICK=0
    RABBIT_STARTING=0
    case $2 in
        rabbitmq)
            case $1 in
                stop) stop_rabbitmq ;;
                start) start_rabbitmq ;;
                restart) stop_rabbitmq; start_rabbitmq ;;
            esac
            [ "$RABBIT_STARTING" -eq 1 ] && rmq_wait rabbitmq "$RABBIT_T0" ;;
        postgres)
            case $1 in
                stop) stop_postgres fast ;;
                start) start_postgres ;;
                restart) stop_postgres fast; start_postgres ;;
            esac ;;
        smtp)
            case $1 in
                stop) stop_smtp ;;
                start) start_smtp ;;
                restart) stop_smtp; start_smtp ;;
            esac ;;
    esac
    return 0
}

[ $# -ge 1 ] || usage
CMD=$1
shift
CLEAN=0
ARGS_DIR=
case $CMD in
    stop)
        for _a in "$@"; do
            case $_a in
                --clean) CLEAN=1 ;;
                *) ARGS_DIR=$_a ;;
            esac
        done ;;
    -h|--help|help) usage ;;
    *)
        [ $# -ge 1 ] || usage
        ARGS_DIR=$1
        shift ;;
esac
set_dir "$ARGS_DIR"

case $CMD in
    start) cmd_start ;;
    stop) cmd_stop ;;
    env)
        [ -f "$ENVF" ] || die "no $ENVF (run: $0 start $DIR)"
        cat "$ENVF" ;;
    status) cmd_status ;;
    start-rabbitmq|stop-rabbitmq|restart-rabbitmq|\
    start-postgres|stop-postgres|restart-postgres|\
    start-smtp|stop-smtp|restart-smtp)
        one "${CMD%%-*}" "${CMD#*-}" ;;
    kill-rabbitmq)
        need_state
        lock_dir
        rmq_kill rabbitmq || log "rabbitmq: not running" ;;
    pause-rabbitmq) need_state; signal_rabbitmq STOP ;;
    resume-rabbitmq) need_state; signal_rabbitmq CONT ;;
    kill-postgres) need_state; lock_dir; stop_postgres immediate ;;
    kill-smtp) need_state; lock_dir; kill_smtp ;;
    rabbitmqctl)
        need_state
        [ -n "$(rmq_epmd_pid)" ] || die "rabbitmq: not running (no epmd)"
        rmq_tool rabbitmqctl "$@" ;;
    psql)
        need_state
        exec "$PG_BIN/psql" -X -h "$PGD" -p "$PG_PORT" -U mfa_admin -d mfa \
            "$@" ;;
    *) usage ;;
esac
