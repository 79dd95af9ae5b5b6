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
#   stop-node DIR I      rabbitmqctl stop of node I (a clean shutdown)
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
# through node_env, so none ever starts a system epmd on port 4369.
# Ports are reserved in the registry tests/servers.sh uses
# (MFA_SERVERS_PORT_REGISTRY, default /tmp/mfa-servers-ports) and listed
# in DIR/state, so a concurrent servers.sh never picks one of them.

set -eu

RMQ_BIN=/usr/lib/rabbitmq/bin
PY=/usr/bin/python3
EPMD=/usr/bin/epmd
[ -x "$EPMD" ] || EPMD=$(command -v epmd || echo epmd)
TIMEOUT=${MFA_SERVERS_TIMEOUT:-90}
REG=${MFA_SERVERS_PORT_REGISTRY:-/tmp/mfa-servers-ports}

log() { printf 'cluster.sh: %s %s\n' "$(date +%T)" "$*" >&2; }
die() { printf 'cluster.sh: error: %s\n' "$*" >&2; exit 1; }

usage() {
    sed -n '2,/^$/s/^# \{0,1\}//p' "$0" >&2
    exit 2
}

alive() {
    [ -n "${1:-}" ] && [ -r "/proc/$1/stat" ] || return 1
    _st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1) || return 1
    [ -n "$_st" ] && [ "$_st" != Z ] && [ "$_st" != X ]
}

has_env() {
    { tr '\0' '\n' <"/proc/$1/environ"; } 2>/dev/null | grep -qxF "$2"
}

wait_gone() {
    _n=$(($2 * 10))
    while alive "$1"; do
        [ "$_n" -le 0 ] && return 1
        _n=$((_n - 1))
        sleep 0.1
    done
    return 0
}

set_dir() {
    [ -n "${1:-}" ] || usage
    case $1 in
        *[!A-Za-z0-9_./+,:@=-]*) die "DIR '$1' has characters not quoted" ;;
        /*) DIR=$1 ;;
        *) DIR=$(pwd -P)/$1 ;;
    esac
    STATE=$DIR/state
    HOMED=$DIR/home
}

# ---- ports ----------------------------------------------------------------
# Same registry protocol as tests/servers.sh: $REG/<port> names the owning
# DIR (created with O_EXCL); DIR/state lists the port.

pick_ports() {
    "$PY" - "$REG" "$DIR" "$1" <<'PYEOF'
import os, random, socket, sys

reg, owner, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
# prints: the first of 5 consecutive ports (rabbitmqctl's range), then
# count single ports
os.makedirs(reg, exist_ok=True)
try:
    os.chmod(reg, 0o1777)
except OSError:
    pass

def free(port):
    for host in ("0.0.0.0", "127.0.0.1"):
        s = socket.socket()
        try:
            s.bind((host, port))
        except OSError:
            return False
        finally:
            s.close()
    return True

def reserve(port):
    try:
        fd = os.open(os.path.join(reg, str(port)),
                     os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except OSError:
        return False
    with os.fdopen(fd, "w") as f:
        f.write(owner + "\n")
    return True

lo = 32768
try:
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        lo = int(f.read().split()[0])
except (OSError, ValueError):
    pass
rnd = random.SystemRandom()

def block(n):
    """n consecutive free ports, reserved."""
    for _ in range(4000):
        p = rnd.randint(10000, max(10001, lo - 1 - n))
        got = []
        for q in range(p, p + n):
            if free(q) and reserve(q):
                got.append(q)
            else:
                break
        if len(got) == n:
            return got
        for q in got:
            os.unlink(os.path.join(reg, str(q)))
    sys.exit("cluster.sh: no free ports")

# first the control range (5 consecutive), then single ports
out = block(5)[:1] + [block(1)[0] for _ in range(count)]
print(" ".join(map(str, out)))
PYEOF
}

release_ports() {
    for _f in "$REG"/*; do
        [ -f "$_f" ] || continue
        [ "$(cat "$_f" 2>/dev/null)" = "$DIR" ] && rm -f "$_f"
    done
    return 0
}

load_state() {
    [ -f "$STATE" ] || die "$DIR has no cluster (run: $0 start $DIR)"
    # shellcheck disable=SC1090
    . "$STATE"
}

# ---- one node ---------------------------------------------------------------

node_vars() {
    I=$1
    if [ "$I" -lt 1 ] || [ "$I" -gt "$N" ]; then
        die "no node $I (1..$N)"
    fi
    eval "NODE=\$NODE_$I AMQP=\$AMQP_$I DIST=\$DIST_$I"
    ND=$DIR/node$I
}

node_env() {
    env HOME="$HOMED" LC_ALL=C.UTF-8 LANG=C.UTF-8 \
        RABBITMQ_NODENAME="$NODE" \
        RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
        RABBITMQ_NODE_PORT="$AMQP" \
        RABBITMQ_DIST_PORT="$DIST" \
        RABBITMQ_MNESIA_BASE="$ND/mnesia" \
        RABBITMQ_LOG_BASE="$ND/log" \
        RABBITMQ_CONFIG_FILE="$ND/rabbitmq.conf" \
        RABBITMQ_ADVANCED_CONFIG_FILE="$ND/advanced.config" \
        RABBITMQ_ENABLED_PLUGINS_FILE="$ND/enabled_plugins" \
        RABBITMQ_CONF_ENV_FILE="$ND/rabbitmq-env.conf" \
        RABBITMQ_PID_FILE="$ND/rabbit.pid" \
        RABBITMQ_CTL_DIST_PORT_MIN="$CTL_MIN" \
        RABBITMQ_CTL_DIST_PORT_MAX="$CTL_MAX" \
        RABBITMQ_CTL_ERL_ARGS="-start_epmd false" \
        RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-start_epmd false -kernel inet_dist_use_interface {127,0,0,1} +sbwt none +sbwtdcpu none +sbwtdio none" \
        ERL_EPMD_PORT="$EPMD_PORT" \
        ERL_CRASH_DUMP="$ND/log/erl_crash.dump" \
        "$@"
}

ctl() { (cd "$ND" && node_env "$RMQ_BIN/rabbitmqctl" -n "$NODE" "$@"); }

node_pid() {
    _p=$(sed -n '1{s/[^0-9]//g;p;}' "$ND/rabbit.pid" 2>/dev/null || true)
    if [ -n "$_p" ] && alive "$_p" && has_env "$_p" "RABBITMQ_NODENAME=$NODE" \
        && has_env "$_p" "RABBITMQ_MNESIA_BASE=$ND/mnesia"; then
        echo "$_p"
    fi
    return 0
}

# A beam of this node without a pid file (killed early).
node_strays() {
    for _f in /proc/[0-9]*; do
        _p=${_f#/proc/}
        [ "$(cat "$_f/comm" 2>/dev/null)" = beam.smp ] || continue
        has_env "$_p" "RABBITMQ_MNESIA_BASE=$ND/mnesia" || continue
        has_env "$_p" "RABBITMQ_NODENAME=$NODE" || continue
        echo "$_p"
    done
}

write_node_config() {
    mkdir -p "$ND/mnesia" "$ND/log"
    cat >"$ND/rabbitmq.conf" <<EOF
# written by tests/fault/cluster.sh
listeners.tcp.default = 127.0.0.1:$AMQP
loopback_users = none
log.console = false
log.file.level = info
disk_free_limit.absolute = 50MB
EOF
    echo '[].' >"$ND/enabled_plugins"
    echo '[].' >"$ND/advanced.config"
    : >"$ND/rabbitmq-env.conf"
}

listening() {
    "$PY" -c 'import socket,sys
s=socket.socket(); s.settimeout(1)
sys.exit(0 if s.connect_ex(("127.0.0.1", int(sys.argv[1]))) == 0 else 1)' "$1"
}

launch_node() {
    [ -n "$(node_pid)" ] && { log "node $I already runs"; return 0; }
    for _s in $(node_strays); do kill -KILL "$_s" 2>/dev/null || true; done
    write_node_config
    rm -f "$ND/rabbit.pid"
    log "node $I: starting $NODE on 127.0.0.1:$AMQP (dist $DIST)"
    (cd "$ND" && node_env "$RMQ_BIN/rabbitmq-server" -detached) \
        >>"$ND/log/start.out" 2>&1 || die "node $I: rabbitmq-server failed"
}

wait_node() {
    _t0=$(date +%s)
    while :; do
        if ctl -q await_startup -t 10 >>"$ND/log/await.out" 2>&1 &&
            listening "$AMQP"; then
            break
        fi
        if [ $(($(date +%s) - _t0)) -ge "$TIMEOUT" ]; then
            tail -n 30 "$ND/log/$NODE.log" >&2 2>/dev/null || true
            die "node $I not up after ${TIMEOUT}s"
        fi
        sleep 0.5
    done
    log "node $I: up after $(($(date +%s) - _t0))s"
}

# SIGTERM is RabbitMQ's clean shutdown (as rabbitmqctl stop, without
# starting one more Erlang VM); SIGKILL after 30 s.
stop_node() {
    _p=$(node_pid)
    if [ -n "$_p" ]; then
        kill -TERM "$_p" 2>/dev/null || true
        if ! wait_gone "$_p" 30; then
            log "node $I: still up after SIGTERM; SIGKILL"
            kill -KILL "$_p" 2>/dev/null || true
            wait_gone "$_p" 10 || true
        fi
        log "node $I: stopped"
    fi
    for _s in $(node_strays); do
        kill -KILL "$_s" 2>/dev/null || true
        wait_gone "$_s" 10 || true
    done
    rm -f "$ND/rabbit.pid"
}

kill_node() {
    _p=$(node_pid)
    [ -n "$_p" ] || die "node $I is not running"
    kill -KILL "$_p"
    wait_gone "$_p" 10 || true
    rm -f "$ND/rabbit.pid"
    log "node $I: killed (pid $_p)"
}

# ---- epmd -------------------------------------------------------------------

epmd_pid() {
    _p=$(sed -n '1{s/[^0-9]//g;p;}' "$DIR/epmd.pid" 2>/dev/null || true)
    if [ -n "$_p" ] && alive "$_p"; then
        case " $(tr '\0' ' ' <"/proc/$_p/cmdline" 2>/dev/null) " in
            *epmd*" -port $EPMD_PORT "*) echo "$_p" ;;
        esac
    fi
    return 0
}

start_epmd() {
    [ -n "$(epmd_pid)" ] && return 0
    (cd "$DIR" && exec setsid "$EPMD" -port "$EPMD_PORT" -address 127.0.0.1 \
        >>"$DIR/epmd.log" 2>&1 </dev/null) &
    echo $! >"$DIR/epmd.pid"
    _n=50
    until ERL_EPMD_PORT='' "$EPMD" -port "$EPMD_PORT" -names >/dev/null 2>&1
    do
        [ "$_n" -le 0 ] && die "epmd on port $EPMD_PORT does not answer"
        _n=$((_n - 1))
        sleep 0.1
    done
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
    _want=${1:-3}
    mkdir -p "$DIR"
    DIR=$(cd "$DIR" && pwd -P)
    set_dir "$DIR"
    if [ ! -f "$STATE" ]; then
        _ports=$(pick_ports $((1 + 2 * _want))) || die "no ports"
        # shellcheck disable=SC2086
        set -- $_ports
        _h=$(printf '%s' "$DIR" | md5sum | cut -c1-8)
        {
            echo "# written by tests/fault/cluster.sh; fixed for this DIR"
            echo "N=$_want"
            echo "CTL_MIN=$1"
            echo "CTL_MAX=$(($1 + 4))"
            _c=$1
            while [ "$_c" -le $(($1 + 4)) ]; do
                echo "CTL_PORT_$_c=$_c"   # listed for the port registry
                _c=$((_c + 1))
            done
            echo "EPMD_PORT=$2"
            shift 2
            _i=1
            while [ "$_i" -le "$_want" ]; do
                echo "NODE_$_i=mfa-cl$_i-$_h@localhost"
                echo "AMQP_$_i=$1"
                echo "DIST_$_i=$2"
                shift 2
                _i=$((_i + 1))
            done
        } >"$STATE"
    fi
    load_state
    mkdir -p "$HOMED"
    chmod 700 "$HOMED"
    if [ ! -s "$HOMED/.erlang.cookie" ]; then
        "$PY" -c 'import secrets,string
print("".join(secrets.choice(string.ascii_uppercase) for _ in range(32)),
      end="")' >"$HOMED/.erlang.cookie"
        chmod 400 "$HOMED/.erlang.cookie"
    fi
    start_epmd
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
        wait_node &
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
        if [ -f "$ND/joined" ]; then   # a restart: it rejoined by itself
            _i=$((_i + 1))
            continue
        fi
        log "node $_i: joining $_first"
        ctl -q stop_app >>"$ND/log/join.out" 2>&1 || die "node $_i: stop_app"
        ctl -q join_cluster "$_first" >>"$ND/log/join.out" 2>&1 ||
            { tail -n 5 "$ND/log/join.out" >&2; die "node $_i: join_cluster"; }
        ctl -q start_app >>"$ND/log/join.out" 2>&1 || die "node $_i: start_app"
        listening "$AMQP" || wait_node
        : >"$ND/joined"
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
    _p=$(epmd_pid)
    if [ -n "$_p" ]; then
        kill -TERM "$_p" 2>/dev/null || true
        wait_gone "$_p" 10 || kill -KILL "$_p" 2>/dev/null || true
    fi
    rm -f "$DIR/epmd.pid"
    if [ "$CLEAN" -eq 1 ]; then
        release_ports
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
            kill-node) kill_node ;;
            start-node) start_epmd; launch_node; wait_node ;;
        esac ;;
    rabbitmqctl)
        [ $# -ge 1 ] || usage
        load_state
        node_vars "$1"
        shift
        ctl "$@" ;;
    rabbitmq-queues)
        [ $# -ge 1 ] || usage
        load_state
        node_vars "$1"
        shift
        (cd "$ND" && node_env "$RMQ_BIN/rabbitmq-queues" -n "$NODE" "$@") ;;
    *) usage ;;
esac
