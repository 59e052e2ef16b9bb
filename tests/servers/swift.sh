#!/usr/bin/env bash
# OpenStack Swift all-in-one on loopback for Tank's chase store suites and benchmark:
# memcached, the account, container and object servers, and one proxy with tempauth, each
# on a free 127.0.0.1 port, with config, rings and data under one directory.
#
#   tests/servers/swift.sh up DIR [--watch PID]   start; print the settings as KEY=VALUE lines
#                                                   (also written to DIR/env)
#   tests/servers/swift.sh down DIR               stop what `up DIR` started, by pid; remove DIR
#
# `--watch PID` also starts a watcher that runs `down DIR` once process PID has ended: a
# test binary starts Swift once and cannot run code when it exits, so the watcher stops the
# daemons after it. Ports can be fixed with SWIFT_PROXY_PORT, SWIFT_ACCOUNT_PORT,
# SWIFT_CONTAINER_PORT, SWIFT_OBJECT_PORT and SWIFT_MEMCACHED_PORT; unset, the kernel picks.
#
# tempauth users (X-Auth-User / X-Auth-Key), each .admin of its account: tank:uploader /
# Sw1ft-k3y-n3ver-sh0wn (AUTH_tank; the suites' user: a key no log or answer may show),
# test:tester / testing (AUTH_test).
#
# The servers are Debian's packages (swift, swift-proxy, swift-account, swift-container,
# swift-object, memcached), which run on Debian's /usr/bin/python3. That is not always the
# python3 on PATH (a pyenv one, say, cannot import swift), so Python code here runs on the
# interpreter named in swift-ring-builder's first line.
set -euo pipefail

usage() { echo "usage: $0 up DIR [--watch PID] | down DIR" >&2; exit 2; }
[ $# -ge 2 ] || usage
cmd=$1 D=$2
shift 2

# Whether process $1 still runs. A daemon whose parent (this script) is gone is reaped by
# PID 1, and where PID 1 does not reap, a stopped daemon stays a zombie: that counts as gone.
running() { [ -r "/proc/$1/stat" ] && [ "$(sed -e 's/^.*) //' "/proc/$1/stat" | cut -d' ' -f1)" != Z ]; }

down() {
    # Newest first, so the proxy stops taking requests before what it talks to goes.
    for n in proxy object container account memcached; do
        f="$D/pids/$n.pid"
        [ -f "$f" ] || continue
        p=$(cat "$f")
        kill "$p" 2>/dev/null || true
        for _ in $(seq 50); do running "$p" || break; sleep 0.1; done
        if running "$p"; then kill -9 "$p" 2>/dev/null || true; fi
        rm -f "$f"
    done
    # Only a directory this script made: it holds the marker `up` wrote.
    if [ -f "$D/.tank-swift" ]; then rm -rf "$D"; fi
}

case $cmd in
down) down; exit 0 ;;
up) ;;
*) usage ;;
esac

watch=""
if [ "${1:-}" = "--watch" ]; then
    [ $# -ge 2 ] || usage
    watch=$2
fi

missing=()
for program in swift-ring-builder swift-proxy-server swift-account-server swift-container-server \
    swift-object-server memcached; do
    command -v "$program" >/dev/null || missing+=("$program")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "$0: ${missing[*]} missing: apt-get install swift swift-proxy swift-account swift-container" \
        "swift-object memcached (cargo xtask test installs them)" >&2
    exit 1
fi
python=$(head -n1 "$(command -v swift-ring-builder)" | sed -e 's/^#! *//' -e 's/ .*//')

mkdir -p "$D"
if [ -n "$(ls -A "$D")" ]; then echo "$0: $D is not empty" >&2; exit 1; fi
touch "$D/.tank-swift"
mkdir -p "$D"/{etc,srv/sdb1,log,pids,cache}

# Free ports from the kernel: bind port 0 and read what it gave. Another process could take
# one before the server binds it; the servers then fail to start and the wait below says so.
free_port() { "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PROXY_PORT=${SWIFT_PROXY_PORT:-$(free_port)}
ACCOUNT_PORT=${SWIFT_ACCOUNT_PORT:-$(free_port)}
CONTAINER_PORT=${SWIFT_CONTAINER_PORT:-$(free_port)}
OBJECT_PORT=${SWIFT_OBJECT_PORT:-$(free_port)}
MEMCACHED_PORT=${SWIFT_MEMCACHED_PORT:-$(free_port)}
USER_NAME=$(id -un)

# swift_dir points every server at this swift.conf and these rings, so the package's own
# /etc/swift (whose swift.conf has placeholder hash values) is never read.
cat >"$D/etc/swift.conf" <<CONF
[swift-hash]
swift_hash_path_suffix = tank-test-suffix
swift_hash_path_prefix = tank-test-prefix
[storage-policy:0]
name = gold
default = yes
[swift-constraints]
CONF

# workers = 0: one process per server, so the pid recorded below is the whole server.
# mount_check = false: the device is a plain directory, not a mount point.
backend() { # name port
    cat <<CONF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $2
workers = 0
user = $USER_NAME
swift_dir = $D/etc
devices = $D/srv
mount_check = false
disable_fallocate = true
recon_cache_path = $D/cache
log_level = INFO
[pipeline:main]
pipeline = healthcheck $1-server
[app:$1-server]
use = egg:swift#$1
[filter:healthcheck]
use = egg:swift#healthcheck
CONF
}
backend account "$ACCOUNT_PORT" >"$D/etc/account-server.conf"
backend container "$CONTAINER_PORT" >"$D/etc/container-server.conf"
backend object "$OBJECT_PORT" >"$D/etc/object-server.conf"

# tempauth keeps its tokens in memcache (it refuses to work without), so the cache filter
# comes before it. slo and dlo serve large objects; bulk is what SLO's manifest delete uses.
cat >"$D/etc/proxy-server.conf" <<CONF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $PROXY_PORT
workers = 0
user = $USER_NAME
swift_dir = $D/etc
log_level = INFO

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk tempurl tempauth copy slo dlo proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
allow_account_management = true

[filter:tempauth]
use = egg:swift#tempauth
user_tank_uploader = Sw1ft-k3y-n3ver-sh0wn .admin
user_test_tester = testing .admin
reseller_prefix = AUTH

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$MEMCACHED_PORT

[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:bulk]
use = egg:swift#bulk
[filter:tempurl]
use = egg:swift#tempurl
[filter:copy]
use = egg:swift#copy
[filter:slo]
use = egg:swift#slo
[filter:dlo]
use = egg:swift#dlo
CONF

# Three rings of one device, one replica, built in one Python process: nine
# swift-ring-builder runs cost ~4 s of interpreter start-up, this ~0.5 s.
"$python" - "$D/etc" "$ACCOUNT_PORT" "$CONTAINER_PORT" "$OBJECT_PORT" <<'PY'
import sys
from swift.common.ring import RingBuilder
etc, ports = sys.argv[1], dict(zip(("account", "container", "object"), map(int, sys.argv[2:])))
for name, port in ports.items():
    b = RingBuilder(8, 1, 1)
    b.add_dev({"id": 0, "region": 1, "zone": 1, "ip": "127.0.0.1", "port": port, "device": "sdb1", "weight": 100})
    b.rebalance()
    b.get_ring().save("%s/%s.ring.gz" % (etc, name))
PY

# Each daemon in the foreground of its own background job, output to a file: an inherited
# stdout would keep the caller's pipe open forever. -v also logs to stdout (there is no
# syslog socket here).
memcached -l 127.0.0.1 -p "$MEMCACHED_PORT" -U 0 -m 64 -u "$USER_NAME" </dev/null >"$D/log/memcached.out" 2>&1 &
echo $! >"$D/pids/memcached.pid"
for s in account container object proxy; do
    "swift-$s-server" "$D/etc/$s-server.conf" -v </dev/null >"$D/log/$s.out" 2>&1 &
    echo $! >"$D/pids/$s.pid"
done

if [ -n "$watch" ]; then
    # setsid and closed descriptors: the watcher must outlive the caller without holding
    # its terminal or pipes. `tail --pid` returns once PID is gone.
    setsid bash -c 'tail --pid="$1" -f /dev/null; exec "$2" down "$3"' watcher "$watch" "$0" "$D" \
        </dev/null >/dev/null 2>&1 &
fi

ready() { curl -sf -o /dev/null --max-time 2 "http://127.0.0.1:$1/healthcheck"; }
deadline=$((SECONDS + 60))
for port in "$ACCOUNT_PORT" "$CONTAINER_PORT" "$OBJECT_PORT" "$PROXY_PORT"; do
    until ready "$port"; do
        for n in memcached account container object proxy; do
            if ! running "$(cat "$D/pids/$n.pid")"; then
                echo "$0: $n exited; its log ($D/log/$n.out) ends:" >&2
                tail -n 20 "$D/log/$n.out" >&2
                down
                exit 1
            fi
        done
        if [ $SECONDS -ge $deadline ]; then
            echo "$0: Swift did not answer on port $port within 60 s; logs in $D/log" >&2
            exit 1
        fi
        sleep 0.1
    done
done

cat >"$D/env" <<ENV
SWIFT_AUTH_URL=http://127.0.0.1:$PROXY_PORT/auth/v1.0
SWIFT_PROXY_PORT=$PROXY_PORT
SWIFT_MEMCACHED_PORT=$MEMCACHED_PORT
SWIFT_USER=tank:uploader
SWIFT_KEY=Sw1ft-k3y-n3ver-sh0wn
SWIFT_DIR=$D
ENV
cat "$D/env"
