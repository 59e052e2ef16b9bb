#!/usr/bin/env bash
# Benchmark for docs/benchmarks.md: the same random bytes (1 GiB by default) moved into and
# out of the in-repo Sheepdog protocol test server (tests/src/sheepdog.rs, objects as files
# in a scratch directory) two ways: through `tank api`'s sheepdog store (curl uploads and
# downloads, x-image-meta-store: sheepdog), and with sheepdog-raw-client, a raw-protocol
# client that does what `dog vdi write` / `dog vdi read` do (there is no Sheepdog package
# here, so no `dog`). Medians of RUNS runs (default 3), plus peak RSS of tank and of the
# server.
#
# This measures Tank against the in-repo test server, not against a real Sheepdog cluster.
#
# Usage: tests/bench/sheepdog.sh [SIZE_MIB]   (default 1024). Needs `cargo xtask dist`
# first (its release build also makes the two test tools in $CARGO_TARGET_DIR/release).
# Not a test: it prints numbers.
set -euo pipefail
cd "$(dirname "$0")/../.."
size_mib=${1:-1024}
runs=${RUNS:-3}
root=$(pwd)
tank="$root/dist/bin/tank"
release=${CARGO_TARGET_DIR:-$root/target}/release
[ -x "$tank" ] || { echo "run cargo xtask dist first" >&2; exit 1; }
for tool in sheepdog-test-server sheepdog-raw-client; do
    [ -x "$release/$tool" ] || { echo "$release/$tool is missing: cargo build --release --workspace" >&2; exit 1; }
done

work=$(mktemp -d /var/tmp/tank-sheepdog-bench.XXXXXX)
cleanup() {
    [ -n "${tank_pid:-}" ] && kill "$tank_pid" 2>/dev/null || true
    [ -n "${sheep_pid:-}" ] && kill "$sheep_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
# shellcheck source=tests/bench/lib.sh
. tests/bench/lib.sh

bytes=$((size_mib * 1048576))
head -c "$bytes" /dev/urandom >"$work/image"
md5=$(md5sum "$work/image" | cut -d' ' -f1)

sheep_port=$(free_port)
"$release/sheepdog-test-server" "$work/objects" "127.0.0.1:$sheep_port" >"$work/sheep.log" 2>&1 &
sheep_pid=$!
for _ in $(seq 200); do grep -q "listening on" "$work/sheep.log" && break; sleep 0.05; done
sheep="127.0.0.1:$sheep_port"

port=$(free_port)
mkdir -p "$work/etc" "$work/var"
sed -e "s|../plugins|$root/dist/plugins|" -e "s|../var|$work/var|" -e "s|api_port = 9292|api_port = $port|" \
    "$root/dist/etc/tank.toml" >"$work/etc/tank.toml"
cat >>"$work/etc/tank.toml" <<CONF
[store.sheepdog]
address = "127.0.0.1"
port = $sheep_port
CONF
TANK_LOG=${TANK_LOG:-warn} "$tank" api --config "$work/etc/tank.toml" 2>>"$work/tank.log" &
tank_pid=$!
for _ in $(seq 200); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.05; done

tank_up() {
    reply=$(curl -sf -X POST "http://127.0.0.1:$port/v1/images" -H 'content-type: application/octet-stream' \
        -H 'x-image-meta-store: sheepdog' -H 'x-image-meta-name: bench' -H 'Expect:' -T "$work/image")
    echo "$reply" | grep -q "\"checksum\":\"$md5\"" || { echo "checksum mismatch: $reply" >&2; exit 1; }
    echo "$reply" | sed -E 's/.*"id":"([^"]+)".*/\1/' >"$work/id"
}
tank_down() { curl -sf -o /dev/null "http://127.0.0.1:$port/v1/images/$(cat "$work/id")"; }
tank_delete() { curl -sf -o /dev/null -X DELETE "http://127.0.0.1:$port/v1/images/$(cat "$work/id")"; }
raw_up() { "$release/sheepdog-raw-client" upload "$sheep" "raw-$1" "$work/image"; }
raw_down() { "$release/sheepdog-raw-client" download "$sheep" "raw-$1" >/dev/null; }
raw_delete() { "$release/sheepdog-raw-client" delete "$sheep" "raw-$1"; }

# The raw client's download is checked once against the image, outside the timings.
raw_up check
"$release/sheepdog-raw-client" download "$sheep" raw-check | md5sum | grep -q "$md5" || {
    echo "the raw client's download differs from the image" >&2
    exit 1
}
raw_delete check

raw_ups=() raw_downs=() tank_ups=() tank_downs=()
for n in $(seq "$runs"); do
    raw_ups+=("$(timed raw_up "$n")")
    raw_downs+=("$(timed raw_down "$n")")
    raw_delete "$n"
    tank_ups+=("$(timed tank_up)")
    tank_downs+=("$(timed tank_down)")
    tank_delete
done
ru=$(printf '%s\n' "${raw_ups[@]}" | median)
rd=$(printf '%s\n' "${raw_downs[@]}" | median)
tu=$(printf '%s\n' "${tank_ups[@]}" | median)
td=$(printf '%s\n' "${tank_downs[@]}" | median)
left=$(find "$work/objects" -type f | wc -l)

echo "size ${size_mib} MiB, ${runs} runs each, against the in-repo test server (not a real cluster)"
echo "  upload:   raw client $(mbps "$bytes" "$ru") MiB/s, tank $(mbps "$bytes" "$tu") MiB/s ($(pct "$ru" "$tu")% of the raw client)"
echo "  download: raw client $(mbps "$bytes" "$rd") MiB/s, tank $(mbps "$bytes" "$td") MiB/s ($(pct "$rd" "$td")% of the raw client)"
echo "  seconds: raw up ${raw_ups[*]} / tank up ${tank_ups[*]} / raw down ${raw_downs[*]} / tank down ${tank_downs[*]}"
echo "  peak RSS (VmHWM): tank api $(peak_rss_mib "$tank_pid") MiB, test server $(peak_rss_mib "$sheep_pid") MiB"
echo "  objects left in the server after the deletes: $left"
