#!/usr/bin/env bash
# Benchmark for docs/benchmarks.md: the same random image (1 GiB by default) up and down
# between a client and a loopback Ceph cluster (one monitor, one memstore OSD, started by
# tests/servers/ceph.sh without radosgw), two ways:
#   tank  curl -T to `tank api` (x-image-meta-store: rbd), curl -o /dev/null back: the whole
#         path through Tank (HTTP, MD5, the plugin ABI, librbd's synchronous writes of one
#         chunk at a time, the protected snapshot, reads of the snapshot);
#   rbd   Ceph's own tool on the same cluster: `rbd import` of the file (with the store's
#         object size, 8 MiB) and `rbd export` of the image to /dev/null.
# Also `md5sum` of the file from the page cache: Tank hashes every upload (Glance's checksum)
# and cannot take it in faster, so the upload's fair limit is the slower of md5sum and rbd
# import (reference benchmarking.md, item 5).
# Each way runs RUNS times (default 3), alternating, on a fresh image each time (deleted
# after), each run after settling (tests/bench/lib.sh); medians are printed, the ratio of
# tank to rbd, and tank's peak RSS.
#
# Usage: tests/bench/rbd.sh [SIZE_MIB]
#   env: RUNS; CARGO_TARGET_DIR; STORE, more lines for [store.rbd] (e.g. chunk_size = 4).
# Needs the release build (`cargo build --release --workspace`) and Ceph's packages.
# Not a test: it prints numbers.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
size_mib=${1:-1024}
runs=${RUNS:-3}
release="${CARGO_TARGET_DIR:-$root/target}/release"
tank="$release/tank"
[ -x "$tank" ] && [ -f "$release/libtank_plugin_rbd.so" ] || {
    echo "build first: cargo build --release --workspace (looked in $release)" >&2
    exit 1
}

work=$(mktemp -d /var/tmp/tank-bench-rbd.XXXXXX)
cleanup() {
    [ -n "${tank_pid:-}" ] && kill "$tank_pid" 2>/dev/null || true
    bash tests/servers/ceph.sh down "$work/ceph" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
# shellcheck source=tests/bench/lib.sh
. tests/bench/lib.sh

RGW=0 RBD_POOL=rbd bash tests/servers/ceph.sh up "$work/ceph" $$ >"$work/ceph.env"
ceph_conf=$(sed -n 's/^ceph_conf=//p' "$work/ceph.env")
keyring=$(sed -n 's/^keyring=//p' "$work/ceph.env")
export CEPH_CONF="$ceph_conf"

bytes=$((size_mib * 1048576))
head -c "$bytes" /dev/urandom >"$work/image"
md5=$(md5sum "$work/image" | cut -d' ' -f1)

mkdir -p "$work/plugins"
for p in fs sled rbd; do
    "$tank" plugins pack --manifest "plugins/$p/tank-plugin.toml" --library "$release/libtank_plugin_$p.so" \
        --out "$work/plugins/$p" >/dev/null
done
cat >"$work/tank.toml" <<CONF
api_host = "127.0.0.1"
api_port = 0
plugin_dirs = ["plugins"]
[store.filesystem]
datadir = "var/images"
[registry.sled]
path = "var/registry"
[store.rbd]
ceph_conf = "$ceph_conf"
keyring = "$keyring"
pool = "rbd"
${STORE:-}
CONF
"$tank" api --config "$work/tank.toml" 2>"$work/tank.log" &
tank_pid=$!
for _ in $(seq 100); do grep -q "listening on" "$work/tank.log" && break; sleep 0.1; done
api=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$work/tank.log" | head -n1)
[ -n "$api" ] || { cat "$work/tank.log" >&2; exit 1; }

tank_up() {
    local r
    r=$(curl -sS -f -X POST -T "$work/image" -H 'content-type: application/octet-stream' \
        -H 'x-image-meta-store: rbd' -H 'x-image-meta-name: bench' "$api/v1/images")
    echo "$r" | grep -q "\"checksum\":\"$md5\"" || { echo "upload: $r" >&2; exit 1; }
    echo "$r" | sed -E 's/.*"id":"([^"]+)".*/\1/' >"$work/id"
}
tank_down() { curl -sS -f -o /dev/null "$api/v1/images/$(cat "$work/id")"; }
rbd_up() { rbd import --no-progress --object-size 8M "$work/image" "rbd/native-$1"; }
rbd_down() { rbd export --no-progress "rbd/native-$1" - >/dev/null; }

tu=() td=() ru=() rd=() mu=()
for n in $(seq "$runs"); do
    mu+=("$(timed md5sum "$work/image")")
    tu+=("$(timed tank_up)")
    td+=("$(timed tank_down)")
    curl -sS -f -X DELETE "$api/v1/images/$(cat "$work/id")" >/dev/null
    ru+=("$(timed rbd_up "$n")")
    rd+=("$(timed rbd_down "$n")")
    rbd rm --no-progress "rbd/native-$n" >/dev/null
done
[ -z "$(rbd ls rbd)" ] || { echo "images left: $(rbd ls rbd)" >&2; exit 1; }

a=$(printf '%s\n' "${tu[@]}" | median)
b=$(printf '%s\n' "${ru[@]}" | median)
c=$(printf '%s\n' "${td[@]}" | median)
d=$(printf '%s\n' "${rd[@]}" | median)
m=$(printf '%s\n' "${mu[@]}" | median)
echo "image: $size_mib MiB, medians of $runs runs, Ceph $(ceph --version | awk '{print $3}') on loopback (1 mon, 1 memstore OSD)"
echo "[store.rbd] extra: ${STORE:-(defaults)}" | tr '\n' ' '
echo
echo "upload:   tank $(mbps "$bytes" "$a") MiB/s, rbd import $(mbps "$bytes" "$b") MiB/s (tank at $(pct "$b" "$a")% of rbd)"
echo "          md5sum $(mbps "$bytes" "$m") MiB/s: tank at $(pct "$(awk -v b="$b" -v m="$m" 'BEGIN { print (b > m ? b : m) }')" "$a")% of the fair limit"
echo "download: tank $(mbps "$bytes" "$c") MiB/s, rbd export $(mbps "$bytes" "$d") MiB/s (tank at $(pct "$d" "$c")% of rbd)"
echo "seconds: tank up ${tu[*]} / rbd import ${ru[*]} / tank down ${td[*]} / rbd export ${rd[*]}"
echo "tank api peak RSS (VmHWM): $(peak_rss_mib "$tank_pid") MiB, CPU $(awk -v hz="$(getconf CLK_TCK)" '{ printf "%.1f", ($14 + $15) / hz }' "/proc/$tank_pid/stat") s"
