#!/usr/bin/env bash
# A throwaway single-node Ceph (Debian's ceph-mon, ceph-osd, radosgw: 16.x "pacific") on
# loopback, for the s3 and rbd stores' suites and benchmarks: one monitor, one OSD keeping
# its data in RAM (memstore), and radosgw serving S3 on a free port, with one S3 user.
#
#   ceph.sh up DIR [WATCH_PID]   start everything under DIR (made empty first); print
#                                endpoint=, tls_endpoint=, ca=, access_key=, secret_key=
#                                (radosgw's), ceph_conf=, keyring= (client.admin's), fsid=
#                                and dir= lines on stdout.
#                                With WATCH_PID, a watcher runs `down DIR` once that process
#                                is gone, so a test binary that exits (or is killed) never
#                                leaves daemons behind.
#   ceph.sh down DIR             stop exactly the daemons `up DIR` started and remove DIR.
#
# radosgw serves plain http on one port and https on another, with a certificate for
# 127.0.0.1 from a throwaway authority (ca= names its PEM file).
#
# Environment:
#   RGW=0            no radosgw and no S3 user (the rbd store needs neither; saves ~1 s and
#                    its memory); then no endpoint= ... secret_key= lines.
#   RBD_POOL=NAME    also create pool NAME and initialise it for RBD.
#   MON_PORT, MON_V1_PORT, RGW_PORT, RGW_TLS_PORT: ports; free ones are picked otherwise.
# The OSD binds its own free ports from Ceph's range (6800-7300). No mgr: S3 works without
# it, and it would cost ~300 MiB. Nothing in /etc/ceph is read or written (CEPH_CONF points
# into DIR), so several clusters can run side by side.
set -euo pipefail

die() { echo "ceph.sh: $*" >&2; exit 1; }

free_port() {
    # bash cannot bind a socket; python3 is on every machine that runs these tests.
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_for SECONDS WHAT COMMAND...: polls until COMMAND succeeds (readiness of a daemon
# that has no way to tell us), failing with a pointer to the logs after SECONDS.
wait_for() {
    local limit=$1 what=$2 start=$SECONDS
    shift 2
    until "$@" >/dev/null 2>&1; do
        if [ $((SECONDS - start)) -ge "$limit" ]; then
            die "timed out after ${limit}s waiting for $what; logs are in $D/log"
        fi
        sleep 0.2
    done
}

# start NAME COMMAND...: runs a daemon in the foreground of a background job (so $! is
# the daemon itself), its output in DIR/log, its pid in DIR/pids/NAME.
start() {
    local name=$1
    shift
    # setsid: the daemons must not die with the caller's terminal or process group; the
    # watcher and `down` stop them by pid.
    setsid "$@" </dev/null >"$D/log/$name.out" 2>&1 &
    echo $! >"$D/pids/$name"
}

# certificates DIR: an authority (ca.pem) and a server certificate for 127.0.0.1 it signed
# (server.pem, server.key), valid for two days.
certificates() {
    local dir=$1 ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
    (
        cd "$dir"
        openssl req -x509 "${ec[@]}" -keyout ca.key -out ca.pem -days 2 -subj "/CN=Tank test CA"
        openssl req "${ec[@]}" -keyout server.key -out server.csr -subj "/CN=127.0.0.1"
        printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >server.ext
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 \
            -extfile server.ext
    ) >"$D/log/openssl.out" 2>&1 || die "making the test certificates failed: $(tail -n 3 "$D/log/openssl.out")"
}

stop_all() {
    # Newest first: radosgw, then the OSD, then the monitor everything talks to.
    for name in rgw osd mon; do
        local f="$D/pids/$name"
        [ -f "$f" ] || continue
        local pid
        pid=$(cat "$f")
        if kill -TERM "$pid" 2>/dev/null; then
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -KILL "$pid" 2>/dev/null || true
        fi
        rm -f "$f"
    done
}

up() {
    local rgw=${RGW:-1}
    command -v ceph-mon >/dev/null && command -v ceph-osd >/dev/null && command -v ceph >/dev/null \
        && command -v rbd >/dev/null || die "Ceph is missing: apt-get install ceph-mon ceph-osd ceph-common (cargo xtask test installs them)"
    if [ "$rgw" = 1 ]; then
        command -v radosgw >/dev/null && command -v radosgw-admin >/dev/null && command -v openssl >/dev/null \
            || die "radosgw or openssl is missing: apt-get install radosgw ceph-common openssl (cargo xtask test installs them)"
    fi
    local mon_port=${MON_PORT:-$(free_port)} mon_v1_port=${MON_V1_PORT:-$(free_port)} rgw_port=${RGW_PORT:-$(free_port)}
    local tls_port=${RGW_TLS_PORT:-$(free_port)}
    local access_key=tank-test-access secret_key
    secret_key=$(head -c 30 /dev/urandom | base64 | tr -d '/+=' | head -c 40)
    local fsid
    fsid=$(cat /proc/sys/kernel/random/uuid)

    rm -rf "$D"
    mkdir -p "$D"/{mon,osd,rgw,run,log,pids,tls}
    if [ "$rgw" = 1 ]; then certificates "$D/tls"; fi
    cat >"$D/ceph.conf" <<EOF
[global]
fsid = $fsid
mon initial members = a
mon host = [v2:127.0.0.1:$mon_port,v1:127.0.0.1:$mon_v1_port]
public network = 127.0.0.0/8
ms bind ipv6 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
auth allow insecure global id reclaim = false
run dir = $D/run
admin socket = $D/run/\$cluster-\$name.asok
log file = $D/log/\$cluster-\$name.log
crash dir = $D/crash
# One OSD: pools of one replica. Few placement groups per pool, so radosgw's pools fit
# the per-OSD limit, and no autoscaler to change them mid-test.
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon max pg per osd = 1000
mon warn on pool no redundancy = false
mon data avail warn = 1
mon data avail crit = 1
# The default 1 s batching makes every pool creation wait ~2 s: radosgw creates several
# pools on its first start and on the first bucket.
paxos propose interval = 0.1
[mon]
mon data = $D/mon/\$cluster-\$id
[osd]
osd data = $D/osd/\$cluster-\$id
osd objectstore = memstore
# The OSD keeps object data in its own memory, up to this much (a 1 GiB image and the
# conformance suite's images fit; what is deleted is freed).
memstore device bytes = ${MEMSTORE_BYTES:-4294967296}
[client]
keyring = $D/\$cluster.\$name.keyring
[client.rgw.a]
rgw data = $D/rgw
# radosgw frees deleted data with its garbage collector, by default two hours later; the
# OSD holds data in memory, so free it within seconds.
rgw gc obj min wait = 0
rgw gc processor period = 5
rgw frontends = beast endpoint=127.0.0.1:$rgw_port ssl_endpoint=127.0.0.1:$tls_port ssl_certificate=$D/tls/server.pem ssl_private_key=$D/tls/server.key
EOF
    export CEPH_CONF="$D/ceph.conf"

    ceph-authtool --create-keyring "$D/mon.keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
    ceph-authtool --create-keyring "$D/ceph.client.admin.keyring" --gen-key -n client.admin \
        --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' >/dev/null
    ceph-authtool "$D/mon.keyring" --import-keyring "$D/ceph.client.admin.keyring" >/dev/null
    monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$mon_port,v1:127.0.0.1:$mon_v1_port]" \
        "$D/monmap" >/dev/null
    ceph-mon --mkfs -i a --monmap "$D/monmap" --keyring "$D/mon.keyring" >"$D/log/mon-mkfs.out" 2>&1 \
        || die "ceph-mon --mkfs failed: $(tail -n 3 "$D/log/mon-mkfs.out")"
    start mon ceph-mon -f -i a
    wait_for 60 "the monitor" ceph -s --connect-timeout 2

    # The OSD's key must exist in the monitor before its mkfs, which fetches its config.
    local osd_uuid osd_secret osd_id
    osd_uuid=$(cat /proc/sys/kernel/random/uuid)
    osd_secret=$(ceph-authtool --gen-print-key)
    osd_id=$(echo "{\"cephx_secret\": \"$osd_secret\"}" | ceph osd new "$osd_uuid" -i -)
    mkdir -p "$D/osd/ceph-$osd_id"
    ceph-authtool --create-keyring "$D/osd/ceph-$osd_id/keyring" --name "osd.$osd_id" --add-key "$osd_secret" >/dev/null
    ceph-osd -i "$osd_id" --mkfs --osd-uuid "$osd_uuid" >"$D/log/osd-mkfs.out" 2>&1 \
        || die "ceph-osd --mkfs failed: $(tail -n 3 "$D/log/osd-mkfs.out")"
    start osd ceph-osd -f -i "$osd_id"
    wait_for 120 "the OSD" sh -c "ceph osd stat | grep -q '1 up'"

    if [ -n "${RBD_POOL:-}" ]; then
        ceph osd pool create "$RBD_POOL" >"$D/log/pool.out" 2>&1 \
            || die "creating pool $RBD_POOL failed: $(tail -n 3 "$D/log/pool.out")"
        rbd pool init "$RBD_POOL" >>"$D/log/pool.out" 2>&1 \
            || die "rbd pool init $RBD_POOL failed: $(tail -n 3 "$D/log/pool.out")"
    fi

    if [ "$rgw" = 1 ]; then
        ceph auth get-or-create client.rgw.a mon 'allow rw' osd 'allow rwx' -o "$D/ceph.client.rgw.a.keyring"
        start rgw radosgw -f -n client.rgw.a
        wait_for 120 "radosgw" curl -sf -o /dev/null "http://127.0.0.1:$rgw_port/"
        radosgw-admin user create --uid=tank --display-name="Tank tests" \
            --access-key="$access_key" --secret-key="$secret_key" >"$D/log/user.out" 2>&1 \
            || die "radosgw-admin user create failed: $(tail -n 3 "$D/log/user.out")"
    fi

    if [ -n "${WATCH_PID:-}" ]; then
        # tail --pid returns when that process is gone, however it ended.
        setsid bash -c 'tail --pid="$1" -f /dev/null; exec "$2" down "$3"' watcher "$WATCH_PID" "$self" "$D" \
            </dev/null >"$D/log/watcher.out" 2>&1 &
    fi
    if [ "$rgw" = 1 ]; then
        echo "endpoint=http://127.0.0.1:$rgw_port"
        echo "tls_endpoint=https://127.0.0.1:$tls_port"
        echo "ca=$D/tls/ca.pem"
        echo "access_key=$access_key"
        echo "secret_key=$secret_key"
    fi
    echo "ceph_conf=$D/ceph.conf"
    echo "keyring=$D/ceph.client.admin.keyring"
    echo "fsid=$fsid"
    echo "dir=$D"
}

self=$(readlink -f "$0")
cmd=${1:-}
D=${2:-}
[ -n "$cmd" ] && [ -n "$D" ] || die "usage: ceph.sh up DIR [WATCH_PID] | ceph.sh down DIR"
case "$D" in /*) ;; *) D="$(pwd)/$D" ;; esac
case "$cmd" in
up)
    WATCH_PID=${3:-}
    # A failed start must not leave half a cluster running.
    trap 'status=$?; if [ $status -ne 0 ]; then stop_all; fi' EXIT
    up
    ;;
down)
    stop_all
    rm -rf "$D"
    ;;
*) die "unknown command $cmd; use up or down" ;;
esac
