#!/bin/sh
# tests/fault/cluster.sh - a private RabbitMQ cluster of N nodes on
# loopback for the fault tests (tests/fault/test_cluster.py), as plain
# processes under one directory, without systemd. It leaves the
# single-node commands of tests/servers.sh alone: its own DIR, ports,
# node names and epmd.
#
# Usage: sh tests/fault/cluster.sh COMMAND DIR [ARGS]
#
#   start DIR [N]        start N nodes (default 3) and join 2..N to node 1
#                        (stop_app / join_cluster / start_app); prints
#                        DIR/env
#   stop DIR [--clean]   stop every node and the cluster's epmd;
#                        --clean also deletes DIR and its port reservations
#   stop-node DIR I      SIGTERM to node I (RabbitMQ shuts down cleanly)
#   kill-node DIR I      SIGKILL node I (a crash)
#   start-node DIR I     start node I again (it rejoins by itself)
#   env DIR              print DIR/env
#   rabbitmqctl DIR I ARGS...      rabbitmqctl against node I
#   rabbitmq-queues DIR I ARGS...  rabbitmq-queues against node I
#
# DIR/env: MFA_CLUSTER_N, and per node I: MFA_CLUSTER_NODE_I (name),
# MFA_CLUSTER_URL_I (amqp://guest:guest@127.0.0.1:PORT/%2f).
#
# Every node shares one HOME (so one Erlang cookie) and one epmd on a
# private port (ERL_EPMD_PORT), and each has its own node name, AMQP and
# distribution port, mnesia and log directories. Every rabbitmqctl goes
# through rmq_env (tests/lib/rabbitmq.sh, as for tests/servers.sh), so
# none ever starts a system epmd on port 4369. Ports are reserved in the
# registry tests/servers.sh uses (tests/lib/ports.sh;
# MFA_SERVERS_PORT_REGISTRY, default /tmp/mfa-servers-ports) and listed in
# DIR/state, so a concurrent servers.sh never picks one of them.

set -eu

# alive, kill_verified, ...; the port registry; one RabbitMQ node
LIB=$(cd "$(dirname "$0")/../lib" && pwd -P)
# shellcheck source=tests/lib/proc.sh
. "$LIB/proc.sh"
# shellcheck source=tests/lib/ports.sh
. "$LIB/ports.sh"
# shellcheck source=tests/lib/rabbitmq.sh
. "$LIB/rabbitmq.sh"

log() { printf 'cluster.sh: %s %s\n' "$(date +%T)" "$*" >&2; }
die() { printf 'cluster.sh: error: %s\n' "$*" >&2; exit 1; }

usage() {
    sed -n '2,/^$/s/^# \{0,1\}//p' "$0" >&2
    exit 2
}

set_dir() {
    [ -n "${1:-}" ] || usage
    case $1 in
        *[!A-Za-z0-9_./+,:@=-]*) die "DIR '$1' has characters not quoted" ;;
        /*) DIR=$1 ;;
        *) DIR=$(pwd -P)/$1 ;;
    esac
    STATE=$DIR/state
    RHOME=$DIR/home
    EPMD_DIR=$DIR
}

# new_state N: names and ports of N nodes, the ports reserved in the
# registry and each listed in DIR/state on a line of its own (what the
# registry takes for a live reservation).
new_state() {
    _h=$(printf '%s' "$DIR" | md5sum | cut -c1-8)
    _specs="CTL_PORT_MIN:5 EPMD_PORT"
    _names=
    _i=1
    while [ "$_i" -le "$1" ]; do
        _specs="$_specs AMQP_$_i DIST_$_i"
        _names="$_names NODE_$_i=mfa-cl$_i-$_h@localhost"
        _i=$((_i + 1))
    done
    # shellcheck disable=SC2086
    _ports=$(ports_py pick $_specs) || die "cannot pick free ports"
    eval "$_ports"
    {
        echo "# written by tests/fault/cluster.sh; fixed for this DIR"
        echo "N=$1"
        echo "$_ports"
        echo "CTL_PORT_MAX=$((CTL_PORT_MIN + 4))"
        for _c in 1 2 3; do
            echo "CTL_PORT_$((CTL_PORT_MIN + _c))=$((CTL_PORT_MIN + _c))"
        done
        # shellcheck disable=SC2086  # one word a node
        printf '%s\n' $_names
    } >"$STATE"
}

load_state() {
    [ -f "$STATE" ] || die "$DIR has no cluster (run: $0 start $DIR)"
    # shellcheck disable=SC1090
    . "$STATE"
}

# ---- one node ---------------------------------------------------------------

# node_vars I: the variables of tests/lib/rabbitmq.sh for node I.
node_vars() {
    I=$1
    if [ "$I" -lt 1 ] || [ "$I" -gt "$N" ]; then
        die "no node $I (1..$N)"
    fi
    eval "NODE=\$NODE_$I AMQP_PORT=\$AMQP_$I DIST_PORT=\$DIST_$I"
    R=$DIR/node$I
}

ctl() { rmq_tool rabbitmqctl "$@"; }

launch_node() {
    [ -n "$(rmq_pid)" ] && { log "node $I already runs"; return 0; }
    for _s in $(rmq_stray_pids); do kill -KILL "$_s" 2>/dev/null || true; done
    rmq_write_config
    log "node $I: starting $NODE on 127.0.0.1:$AMQP_PORT (dist $DIST_PORT)"
    rmq_launch "node $I"
}

# SIGTERM is RabbitMQ's clean shutdown (as rabbitmqctl stop, without
# starting one more Erlang VM); SIGKILL after 30 s.
stop_node() {
    _p=$(rmq_pid)
    if [ -n "$_p" ]; then
        kill_verified "$_p" 30
        log "node $I: stopped"
    fi
    for _s in $(rmq_stray_pids); do
        kill -KILL "$_s" 2>/dev/null || true
        wait_gone "$_s" 10 || true
    done
    rm -f "$R/rabbit.pid"
}

# ---- commands ---------------------------------------------------------------

write_env() {
    {
        echo "export MFA_CLUSTER_N=$N"
        _i=1
        while [ "$_i" -le "$N" ]; do
            eval "echo export MFA_CLUSTER_NODE_$_i=\$NODE_$_i"
            eval "echo export MFA_CLUSTER_URL_$_i=amqp://guest:guest@127.0.0.1:\$AMQP_$_i/%2f"
            _i=$((_i + 1))
        done
    } >"$DIR/env.tmp"
    mv -f "$DIR/env.tmp" "$DIR/env"
}

cmd_start() {
    mkdir -p "$DIR"
    DIR=$(cd "$DIR" && pwd -P)
    set_dir "$DIR"
    [ -f "$STATE" ] || new_state "${1:-3}"
    load_state
    rmq_epmd_start
    _T0=$(date +%s)
    _i=1
    while [ "$_i" -le "$N" ]; do
        node_vars "$_i"
        launch_node
        _i=$((_i + 1))
    done
    # the nodes boot side by side: wait for them in parallel
    _i=1
    _waits=
    while [ "$_i" -le "$N" ]; do
        node_vars "$_i"
        rmq_wait "node $_i" &
        _waits="$_waits $!"
        _i=$((_i + 1))
    done
    for _w in $_waits; do
        wait "$_w" || die "a node did not start (logs under $DIR/node*/log)"
    done
    node_vars 1
    _first=$NODE
    _i=2
    while [ "$_i" -le "$N" ]; do
        node_vars "$_i"
        if [ -f "$R/joined" ]; then   # a restart: it rejoined by itself
            _i=$((_i + 1))
            continue
        fi
        log "node $_i: joining $_first"
        ctl -q stop_app >>"$R/log/join.out" 2>&1 || die "node $_i: stop_app"
        ctl -q join_cluster "$_first" >>"$R/log/join.out" 2>&1 ||
            { tail -n 5 "$R/log/join.out" >&2; die "node $_i: join_cluster"; }
        ctl -q start_app >>"$R/log/join.out" 2>&1 || die "node $_i: start_app"
        ports_listening "$AMQP_PORT" || rmq_wait "node $_i"
        : >"$R/joined"
        _i=$((_i + 1))
    done
    write_env
    log "cluster of $N up in $(($(date +%s) - _T0))s; env in $DIR/env"
    cat "$DIR/env"
}

cmd_stop() {
    [ -f "$STATE" ] || { [ "$CLEAN" -eq 1 ] && rm -rf "$DIR"; return 0; }
    load_state
    _i=1
    _stops=
    while [ "$_i" -le "$N" ]; do
        node_vars "$_i"
        stop_node &
        _stops="$_stops $!"
        _i=$((_i + 1))
    done
    for _w in $_stops; do wait "$_w" || true; done
    # shellcheck disable=SC2119  # no message: cluster.sh logs its nodes only
    rmq_epmd_stop
    if [ "$CLEAN" -eq 1 ]; then
        ports_release
        rm -rf "$DIR"
        log "removed $DIR"
    fi
}

[ $# -ge 2 ] || usage
CMD=$1
shift
CLEAN=0
set_dir "$1"
shift
if [ "$CMD" = stop ] && [ "${1:-}" = --clean ]; then
    CLEAN=1
fi

case $CMD in
    start) cmd_start "$@" ;;
    stop) cmd_stop ;;
    env) cat "$DIR/env" ;;
    stop-node|kill-node|start-node)
        [ $# -ge 1 ] || usage
        load_state
        node_vars "$1"
        case $CMD in
            stop-node) stop_node ;;
            kill-node) rmq_kill "node $I" || die "node $I is not running" ;;
            start-node) rmq_epmd_start; launch_node; rmq_wait "node $I" ;;
        esac ;;
    rabbitmqctl|rabbitmq-queues)
        [ $# -ge 1 ] || usage
        load_state
        node_vars "$1"
        shift
        rmq_tool "$CMD" "$@" ;;
    *) usage ;;
esac
