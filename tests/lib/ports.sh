# shellcheck shell=sh
# tests/lib/ports.sh - the port registry of the test servers, sourced
# (POSIX sh, after tests/lib/proc.sh) by tests/servers.sh and
# tests/fault/cluster.sh, so that neither ever picks a port the other, or
# another copy of itself, holds.
#
# Ports are picked below the kernel's ephemeral range (so that no outgoing
# connection takes one while a server is restarted), tested by binding, and
# reserved in $REG/<port> (a file naming DIR, created with O_EXCL) so two
# copies starting at once never choose the same port. A reservation whose
# DIR no longer lists the port in its state file (DIR/state, lines
# KEY=PORT), and is older than 10 minutes, is stale and may be taken over.
#
# The caller sets DIR (absolute: it names the owner) and defines die.
# Knob: MFA_SERVERS_PORT_REGISTRY (default /tmp/mfa-servers-ports).

REG=${MFA_SERVERS_PORT_REGISTRY:-/tmp/mfa-servers-ports}

# ports_py CMD ARGS...: the registry itself (Python, standard library).
ports_py() {
    _cmd=$1
    shift
    "$PY" - "${0##*/}" "$_cmd" "$REG" "$DIR" "$@" <<'PYEOF'
import errno, os, random, socket, sys, time

prog, cmd, reg, owner = sys.argv[1:5]
args = sys.argv[5:]

def bind_ok(port, relaxed=False):
    """strict: nothing bound at all (no TIME_WAIT either);
    relaxed: nobody listening (a server restarting on its own port)."""
    for host in ("0.0.0.0", "127.0.0.1"):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            if relaxed:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, port))
            if relaxed:
                s.listen(1)
        except OSError:
            return False
        finally:
            s.close()
    return True

def owner_state_has(o, port):
    try:
        with open(os.path.join(o, "state")) as f:
            return any(line.strip().split("=", 1)[-1] == str(port)
                       for line in f)
    except OSError:
        return False

def reserve(port):
    path = os.path.join(reg, str(port))
    for _ in range(2):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            try:
                with open(path) as f:
                    o = f.read().strip()
                age = time.time() - os.stat(path).st_mtime
            except OSError:
                continue
            if o == owner:
                os.utime(path)
                return True
            if age < 600 or owner_state_has(o, port):
                return False
            try:
                os.unlink(path)      # stale: take it over
            except OSError:
                return False
            continue
        with os.fdopen(fd, "w") as f:
            f.write(owner + "\n")
        return True
    return False

def unreserve(port):
    path = os.path.join(reg, str(port))
    try:
        with open(path) as f:
            if f.read().strip() == owner:
                os.unlink(path)
    except OSError:
        pass

def candidates():
    lo, hi = 32768, 60999
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = map(int, f.read().split())
    except (OSError, ValueError):
        pass
    ranges = []
    if lo - 1 >= 12000:
        ranges.append((10000, lo - 1))
    if hi + 1 <= 65000:
        ranges.append((hi + 1, 65000))
    if not ranges:
        ranges.append((1024, 65000))
    rnd = random.SystemRandom()
    for _ in range(4000):
        a, b = rnd.choice(ranges)
        yield rnd.randint(a, b - 16)

def pick(count):
    """count consecutive free ports; returns the first."""
    for p in candidates():
        got = []
        for q in range(p, p + count):
            if bind_ok(q) and reserve(q):
                got.append(q)
            else:
                break
        if len(got) == count:
            return p
        for q in got:
            unreserve(q)
    sys.exit("%s: no free port found" % prog)

if cmd == "pick":
    os.makedirs(reg, exist_ok=True)
    try:
        os.chmod(reg, 0o1777)
    except OSError:
        pass
    for spec in args:          # NAME or NAME:COUNT
        name, _, n = spec.partition(":")
        print("%s=%d" % (name, pick(int(n or 1))))
elif cmd == "free":            # exit 0 if every port is free to listen on
    sys.exit(0 if all(bind_ok(int(p), relaxed=True) for p in args) else 1)
elif cmd == "release":         # drop every reservation of owner
    try:
        names = os.listdir(reg)
    except OSError:
        names = []
    for n in names:
        if n.isdigit():
            unreserve(int(n))
elif cmd == "listening":       # exit 0 if 127.0.0.1:port accepts
    s = socket.socket()
    s.settimeout(1)
    try:
        s.connect(("127.0.0.1", int(args[0])))
        sys.exit(0)
    except OSError:
        sys.exit(1)
    finally:
        s.close()
PYEOF
}

# ports_pick SPEC...: reserve free ports and set the variables they name;
# SPEC is NAME (one port) or NAME:COUNT (COUNT consecutive ones, NAME set to
# the first).
ports_pick() {
    _picked=$(ports_py pick "$@") || die "cannot pick free ports"
    eval "$_picked"
}

# ports_free PORT...: 0 if nobody listens on any of them.
ports_free() { ports_py free "$@"; }

# ports_listening PORT: 0 if 127.0.0.1:PORT accepts a connection.
ports_listening() { ports_py listening "$1"; }

# ports_release: drop every reservation of DIR.
ports_release() { ports_py release || true; }
