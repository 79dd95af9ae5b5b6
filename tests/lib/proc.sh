# shellcheck shell=sh
# tests/lib/proc.sh - process helpers of the test servers, sourced (POSIX
# sh, under `set -eu`) by tests/servers.sh and tests/fault/cluster.sh, and
# through them by tests/lib/ports.sh and tests/lib/rabbitmq.sh.
#
# Processes are found through /proc and told apart by their environment or
# command line, never by name alone: several copies of the servers (other
# DIRs, other users' runs) share the machine, and a stop must only ever
# signal what its own DIR started.
#
# The caller defines log MESSAGE... (progress on stderr).
# Knob: MFA_SERVERS_TIMEOUT (s, default 90) for each wait of a server.

# shellcheck disable=SC2034  # used by the callers and the other libs
PY=/usr/bin/python3
# shellcheck disable=SC2034
TIMEOUT=${MFA_SERVERS_TIMEOUT:-90}

# alive PID: the process exists and is not a zombie.
alive() {
    [ -n "${1:-}" ] && [ -r "/proc/$1/stat" ] || return 1
    _st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1) || return 1
    [ -n "$_st" ] && [ "$_st" != Z ] && [ "$_st" != X ]
}

cmdline() { { tr '\0' ' ' <"/proc/$1/cmdline"; } 2>/dev/null || true; }

# has_env PID KEY=VALUE: the process was started with exactly that variable.
has_env() {
    { tr '\0' '\n' <"/proc/$1/environ"; } 2>/dev/null | grep -qxF "$2"
}

# readpid FILE: the pid in FILE, or nothing.
readpid() {
    [ -s "$1" ] || return 0
    sed -n '1{s/[^0-9]//g;p;}' "$1" 2>/dev/null || true
}

# pidfile_pid FILE PATTERN: the pid in FILE if that process lives and its
# command line, with a space at each end, matches the case PATTERN (a pid
# file outlives its process, and pids are reused).
pidfile_pid() {
    _p=$(readpid "$1")
    if [ -n "$_p" ] && alive "$_p"; then
        # shellcheck disable=SC2254  # $2 is a pattern
        case " $(cmdline "$_p") " in
            $2) echo "$_p" ;;
        esac
    fi
    return 0
}

# wait_gone PID SECONDS: 0 once the process is gone.
wait_gone() {
    _n=$(($2 * 10))
    while alive "$1"; do
        [ "$_n" -le 0 ] && return 1
        _n=$((_n - 1))
        sleep 0.1
    done
    return 0
}

# kill_verified PID [GRACE]: TERM, wait GRACE seconds (15), KILL. The
# callers verified that the pid is theirs; CONT first, as a paused
# process would not act on the TERM.
kill_verified() {
    kill -CONT "$1" 2>/dev/null || true
    kill -TERM "$1" 2>/dev/null || true
    if ! wait_gone "$1" "${2:-15}"; then
        log "pid $1 ignored SIGTERM, sending SIGKILL"
        kill -KILL "$1" 2>/dev/null || true
        wait_gone "$1" 10 || log "pid $1 still alive after SIGKILL"
    fi
}

# tail_log FILE [LINES]: the end of a server's log on stderr, for a failure.
tail_log() {
    [ -f "$1" ] || return 0
    log "---- last lines of $1"
    tail -n "${2:-25}" "$1" >&2 || true
    log "----"
}
