# shellcheck shell=sh
# tests/lib/rabbitmq.sh - one private RabbitMQ node as a plain process,
# sourced (POSIX sh, after tests/lib/proc.sh and tests/lib/ports.sh) by
# tests/servers.sh (the single node of the integration tests) and
# tests/fault/cluster.sh (each node of the fault tests' cluster).
#
# The node is described by variables the caller sets before each call:
#   NODE                   node name (name@localhost)
#   R                      the node's directory: config, mnesia/, log/,
#                          rabbit.pid
#   RHOME                  HOME, holding the Erlang cookie (nodes of one
#                          cluster share it)
#   AMQP_PORT DIST_PORT    its listener and Erlang distribution port
#   EPMD_PORT EPMD_DIR     the private epmd (its port; epmd.pid, epmd.log)
#   CTL_PORT_MIN CTL_PORT_MAX   the range rabbitmqctl's own node takes
# and defines log and die. Every Erlang VM started here, rabbitmqctl's
# too, goes through rmq_env: none ever starts or uses the system's epmd
# on port 4369. Server processes get fd 9 closed (tests/servers.sh locks
# its DIR on it).

RMQ_BIN=/usr/lib/rabbitmq/bin
EPMD=/usr/bin/epmd
[ -x "$EPMD" ] || EPMD=$(command -v epmd || echo epmd)

# +sbwt none (and the dirty schedulers' too): the Erlang schedulers do not
# spin waiting for work, which on a small machine shared with PostgreSQL
# and the workers takes CPU they need (RabbitMQ's own advice for hosts
# with few cores).
rmq_env() {
    env HOME="$RHOME" \
        LC_ALL=C.UTF-8 LANG=C.UTF-8 \
        RABBITMQ_NODENAME="$NODE" \
        RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
        RABBITMQ_NODE_PORT="$AMQP_PORT" \
        RABBITMQ_DIST_PORT="$DIST_PORT" \
        RABBITMQ_MNESIA_BASE="$R/mnesia" \
        RABBITMQ_LOG_BASE="$R/log" \
        RABBITMQ_CONFIG_FILE="$R/rabbitmq.conf" \
        RABBITMQ_ADVANCED_CONFIG_FILE="$R/advanced.config" \
        RABBITMQ_ENABLED_PLUGINS_FILE="$R/enabled_plugins" \
        RABBITMQ_CONF_ENV_FILE="$R/rabbitmq-env.conf" \
        RABBITMQ_PID_FILE="$R/rabbit.pid" \
        RABBITMQ_CTL_DIST_PORT_MIN="$CTL_PORT_MIN" \
        RABBITMQ_CTL_DIST_PORT_MAX="$CTL_PORT_MAX" \
        RABBITMQ_CTL_ERL_ARGS="-start_epmd false" \
        RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-start_epmd false -kernel inet_dist_use_interface {127,0,0,1} +sbwt none +sbwtdcpu none +sbwtdio none" \
        ERL_EPMD_PORT="$EPMD_PORT" \
        ERL_CRASH_DUMP="$R/log/erl_crash.dump" \
        "$@"
}

# rmq_tool TOOL ARGS...: rabbitmqctl, rabbitmq-queues, ... against the node.
rmq_tool() {
    _tool=$1
    shift
    (cd "$R" && rmq_env "$RMQ_BIN/$_tool" -n "$NODE" "$@" 9>&-)
}

# ---- epmd -----------------------------------------------------------------

rmq_epmd_pid() { pidfile_pid "$EPMD_DIR/epmd.pid" "*epmd* -port $EPMD_PORT *"; }

rmq_epmd_answers() {
    ERL_EPMD_PORT='' "$EPMD" -port "$EPMD_PORT" -names >/dev/null 2>&1
}

rmq_epmd_start() {
    [ -n "$(rmq_epmd_pid)" ] && return 0
    mkdir -p "$EPMD_DIR"
    if rmq_epmd_answers; then
        die "rabbitmq: an epmd not started by this DIR answers on port" \
            "$EPMD_PORT; stop it or use 'stop --clean' and start again"
    fi
    (cd "$EPMD_DIR" && exec setsid "$EPMD" -port "$EPMD_PORT" \
        -address 127.0.0.1 >>"$EPMD_DIR/epmd.log" 2>&1 </dev/null 9>&-) &
    _p=$!
    _n=50
    while ! rmq_epmd_answers; do
        alive "$_p" ||
            { tail_log "$EPMD_DIR/epmd.log"; die "epmd did not start"; }
        [ "$_n" -le 0 ] && die "epmd on port $EPMD_PORT does not answer"
        _n=$((_n - 1))
        sleep 0.1
    done
    case " $(cmdline "$_p") " in
        *epmd*" -port $EPMD_PORT "*) ;;
        *) die "epmd pid $_p is not the epmd just started (?)" ;;
    esac
    echo "$_p" >"$EPMD_DIR/epmd.pid"
}

# rmq_epmd_stop [MESSAGE]: stop the epmd, logging MESSAGE if one ran.
rmq_epmd_stop() {
    _p=$(rmq_epmd_pid)
    if [ -n "$_p" ]; then
        kill_verified "$_p"
        [ -z "${1:-}" ] || log "$1"
    fi
    rm -f "$EPMD_DIR/epmd.pid"
}

# ---- the node -------------------------------------------------------------

# rmq_pid: the node's beam, verified by its environment.
rmq_pid() {
    _p=$(readpid "$R/rabbit.pid")
    if [ -n "$_p" ] && alive "$_p" && has_env "$_p" "RABBITMQ_NODENAME=$NODE" \
        && has_env "$_p" "RABBITMQ_MNESIA_BASE=$R/mnesia"; then
        echo "$_p"
    fi
    return 0
}

# A beam of the node may run without a pid file (killed before writing it).
rmq_stray_pids() {
    for _f in /proc/[0-9]*; do
        _p=${_f#/proc/}
        [ "$(cat "$_f/comm" 2>/dev/null)" = beam.smp ] || continue
        alive "$_p" || continue
        has_env "$_p" "RABBITMQ_MNESIA_BASE=$R/mnesia" || continue
        has_env "$_p" "RABBITMQ_NODENAME=$NODE" || continue
        echo "$_p"
    done
}

# rmq_write_config: the node's files, rewritten at each start, and the
# Erlang cookie in RHOME, made once.
rmq_write_config() {
    mkdir -p "$R/mnesia" "$R/log" "$RHOME"
    chmod 700 "$RHOME"
    if [ ! -s "$RHOME/.erlang.cookie" ]; then
        "$PY" -c 'import secrets,string
print("".join(secrets.choice(string.ascii_uppercase) for _ in range(32)),
      end="")' >"$RHOME/.erlang.cookie"
        chmod 400 "$RHOME/.erlang.cookie"
    fi
    cat >"$R/rabbitmq.conf" <<EOF
# written by ${0##*/} (tests/lib/rabbitmq.sh) at each start
listeners.tcp.default = 127.0.0.1:$AMQP_PORT
loopback_users = none
log.console = false
log.file.level = info
disk_free_limit.absolute = 50MB
EOF
    echo '[].' >"$R/enabled_plugins"
    echo '[].' >"$R/advanced.config"
    : >"$R/rabbitmq-env.conf"
}

# rmq_launch WHO: rabbitmq-server -detached; returns while the node boots
# (rmq_wait). WHO names the node in messages.
rmq_launch() {
    rm -f "$R/rabbit.pid"
    if ! (cd "$R" && rmq_env "$RMQ_BIN/rabbitmq-server" -detached 9>&-) \
        >>"$R/log/start.out" 2>&1; then
        tail_log "$R/log/start.out"
        die "$1: rabbitmq-server -detached failed"
    fi
}

rmq_node_registered() {
    ERL_EPMD_PORT='' "$EPMD" -port "$EPMD_PORT" -names 2>/dev/null |
        grep -q "^name ${NODE%@*} at port"
}

# rmq_wait WHO [T0]: until the node has booted and accepts AMQP
# connections, at most TIMEOUT seconds after T0 (epoch seconds, default
# now); dies, showing its logs, if the node exits or does not come up.
rmq_wait() {
    _t0=${2:-$(date +%s)}
    _logf=$R/log/$NODE.log
    while :; do
        _now=$(date +%s)
        _el=$((_now - _t0))
        _p=$(readpid "$R/rabbit.pid")
        if [ -n "$_p" ] && ! alive "$_p"; then
            tail_log "$_logf" 40
            tail_log "$R/log/start.out"
            die "$1: the node (pid $_p) died during start-up"
        fi
        if [ -z "$_p" ] && [ "$_el" -ge 20 ] &&
            [ -z "$(rmq_stray_pids)" ]; then
            tail_log "$_logf" 40
            tail_log "$R/log/start.out"
            die "$1: no node process after ${_el}s"
        fi
        if rmq_node_registered; then
            _left=$((TIMEOUT - _el))
            [ "$_left" -lt 5 ] && _left=5
            if rmq_tool rabbitmqctl -q await_startup -t "$_left" \
                >>"$R/log/await.out" 2>&1 && ports_listening "$AMQP_PORT"
            then
                break
            fi
        fi
        if [ "$_el" -ge "$TIMEOUT" ]; then
            tail_log "$_logf" 40
            tail_log "$R/log/await.out"
            die "$1: not up after ${TIMEOUT}s (see $_logf)"
        fi
        sleep 0.5
    done
    log "$1: up after $(($(date +%s) - _t0))s"
}

# rmq_kill WHO: SIGKILL the node (a crash, no clean shutdown); 1 if it
# does not run.
rmq_kill() {
    _p=$(rmq_pid)
    [ -n "$_p" ] || return 1
    kill -KILL "$_p"
    wait_gone "$_p" 10 || true
    rm -f "$R/rabbit.pid"
    log "$1: killed (pid $_p)"
}
