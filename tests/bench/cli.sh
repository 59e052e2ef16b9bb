#!/usr/bin/env bash
# Benchmark for docs/benchmarks.md: the `tank` command line moving an image over v1 and
# v2 (`tank image add --file`, `tank image download --file`, MD5 checked by the command),
# and a v2 copy-image between two fs stores, against the machine's limit on the same bytes:
# the slower of `cp` + `sync` on the same disk and md5sum with sha512sum at once. Prints
# rates, the command's peak RSS (GNU time) and the server's.
#
# Usage: tests/bench/cli.sh [SIZE_MIB]   (default 1024). Needs `cargo xtask dist` first.
# Not a test: it prints numbers.
set -euo pipefail
cd "$(dirname "$0")/../.."
size_mib=${1:-1024}
root=$(pwd)
tank="$root/dist/bin/tank"
[ -x "$tank" ] || { echo "run cargo xtask dist first" >&2; exit 1; }

work=$(mktemp -d /var/tmp/tank-bench.XXXXXX)
cleanup() {
    [ -n "${tank_pid:-}" ] && kill "$tank_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
. "$root/tests/bench/lib.sh"

bytes=$((size_mib * 1048576))
head -c "$bytes" /dev/urandom >"$work/image"
md5=$(md5sum "$work/image" | cut -d' ' -f1)

mkdir -p "$work/var"
cp_s=$(timed sh -c "cp '$work/image' '$work/var/copy' && sync")
rm "$work/var/copy"
# The server hashes MD5 and sha512 on every byte: both at once, from page cache, is the
# other limit (reference benchmarking.md); the fair one is the slower of the two.
hash_s=$(timed sh -c "md5sum '$work/image' & sha512sum '$work/image' & wait")
limit_s=$(awk -v a="$cp_s" -v b="$hash_s" 'BEGIN { print (a > b ? a : b) }')

port=$(free_port)
mkdir -p "$work/etc"
sed -e "s|../plugins|$root/dist/plugins|" -e "s|../var|$work/var|" -e "s|api_port = 9292|api_port = $port|" \
    "$root/dist/etc/tank.toml" >"$work/etc/tank.toml"
cat >>"$work/etc/tank.toml" <<CONF
[store.second]
plugin = "fs"
datadir = "$work/var/second"
CONF
TANK_LOG=${TANK_LOG:-warn} "$tank" api --config "$work/etc/tank.toml" 2>"$work/tank.log" &
tank_pid=$!
url="http://127.0.0.1:$port"
for _ in $(seq 200); do curl -s -o /dev/null "$url/" && break; sleep 0.05; done

# One command under GNU time: prints "seconds peak_rss_mib", fails if the command does.
measure() {
    settle
    /usr/bin/time -f '%e %M' -o "$work/time" "$@" >"$work/out"
    awk '{ printf "%s %d\n", $1, $2 / 1024 }' "$work/time"
}

for api in v1 v2; do
    read -r up_s up_rss < <(measure "$tank" image add name=bench disk_format=raw container_format=bare \
        --file "$work/image" --url "$url" --api "$api" --json)
    id=$(sed -nE 's/.*"id": "([^"]+)".*/\1/p' "$work/out" | head -n1)
    grep -q "\"checksum\": \"$md5\"" "$work/out" || { echo "checksum mismatch over $api" >&2; exit 1; }
    read -r down_s down_rss < <(measure "$tank" image download "$id" --file "$work/copy" --url "$url" --api "$api")
    rm -f "$work/copy"
    echo "tank image add ($api)       $(mbps "$bytes" "$up_s") MiB/s = $(pct "$limit_s" "$up_s")% of the limit; command peak RSS ${up_rss} MiB"
    echo "tank image download ($api)  $(mbps "$bytes" "$down_s") MiB/s; command peak RSS ${down_rss} MiB"
done

# copy-image of the last image into the second store, timed until the copy is listed.
settle
t0=$(now)
curl -sf -X POST "$url/v2/images/$id/import" -H 'content-type: application/json' \
    -d '{"method": {"name": "copy-image"}, "stores": ["second"]}' >/dev/null
until curl -sf "$url/v2/images/$id" | grep -qE '"stores":"[^"]*second'; do sleep 0.02; done
t1=$(now)
copy_s=$(secs "$t0" "$t1")
echo "copy-image fs -> fs (v2)    $(mbps "$bytes" "$copy_s") MiB/s = $(pct "$limit_s" "$copy_s")% of the limit"
echo "limit                       $(mbps "$bytes" "$limit_s") MiB/s: the slower of cp + sync ($(mbps "$bytes" "$cp_s") MiB/s) and md5sum with sha512sum ($(mbps "$bytes" "$hash_s") MiB/s)"
echo "tank api peak RSS           $(peak_rss_mib "$tank_pid") MiB"
