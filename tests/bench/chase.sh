#!/usr/bin/env bash
# Benchmark for docs/benchmarks.md: the same random bytes (1 GiB by default) moved into and
# out of a loopback Swift all-in-one (tests/servers/swift.sh) two ways: through `tank api`'s
# chase store (curl uploads and downloads, x-image-meta-store: chase), and with the swift
# CLI (python3-swiftclient), the server's own client. Both as one object and as 200 MiB
# segments plus a static large object manifest. Medians of RUNS runs (default 3), plus
# tank's peak RSS.
#
# Usage: tests/bench/chase.sh [SIZE_MIB]   (default 1024). Needs `cargo xtask dist` first
# and Swift's Debian packages (`cargo xtask test` installs them). Not a test: it prints
# numbers.
set -euo pipefail
cd "$(dirname "$0")/../.."
size_mib=${1:-1024}
runs=${RUNS:-3}
root=$(pwd)
tank="$root/dist/bin/tank"
[ -x "$tank" ] || { echo "run cargo xtask dist first" >&2; exit 1; }
command -v swift >/dev/null || { echo "the swift CLI is missing: apt-get install python3-swiftclient" >&2; exit 1; }

work=$(mktemp -d /var/tmp/tank-chase-bench.XXXXXX)
cleanup() {
    [ -n "${tank_pid:-}" ] && kill "$tank_pid" 2>/dev/null || true
    tests/servers/swift.sh down "$work/swift" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

tests/servers/swift.sh up "$work/swift" --watch $$ >"$work/swift.env"
# shellcheck disable=SC1091
. "$work/swift.env"
export ST_AUTH=$SWIFT_AUTH_URL ST_USER=$SWIFT_USER ST_KEY=$SWIFT_KEY
auth=$(curl -sf -D - -o /dev/null -H "X-Auth-User: $SWIFT_USER" -H "X-Auth-Key: $SWIFT_KEY" "$SWIFT_AUTH_URL" | tr -d '\r')
token=$(echo "$auth" | awk -F': ' 'tolower($1) == "x-auth-token" { print $2 }')
storage=$(echo "$auth" | awk -F': ' 'tolower($1) == "x-storage-url" { print $2 }')

mbps() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.0f", b / 1048576 / s }'; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
# The VM reclaims freed pages after ~2 s and idle page cache after ~30 s
# (shared/reference/benchmarking.md): settle before every timed run, re-read the input.
settle() { sync; sleep 3; cat "$work/image" >/dev/null; }
free_port() { /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

bytes=$((size_mib * 1048576))
head -c "$bytes" /dev/urandom >"$work/image"
md5=$(md5sum "$work/image" | cut -d' ' -f1)

# Tank from the dist tree with the chase store; $1 = extra lines for [store.chase].
start_tank() {
    [ -n "${tank_pid:-}" ] && { kill "$tank_pid"; wait "$tank_pid" 2>/dev/null || true; }
    port=$(free_port)
    mkdir -p "$work/etc" "$work/var"
    sed -e "s|../plugins|$root/dist/plugins|" -e "s|../var|$work/var|" -e "s|api_port = 9292|api_port = $port|" \
        "$root/dist/etc/tank.toml" >"$work/etc/tank.toml"
    cat >>"$work/etc/tank.toml" <<CONF
[store.chase]
auth_address = "$SWIFT_AUTH_URL"
user = "$SWIFT_USER"
key = "$SWIFT_KEY"
container = "bench"
create_container_on_put = true
$1
CONF
    TANK_LOG=${TANK_LOG:-warn} "$tank" api --config "$work/etc/tank.toml" 2>>"$work/tank.log" &
    tank_pid=$!
    for _ in $(seq 200); do curl -s -o /dev/null "http://127.0.0.1:$port/" && return; sleep 0.05; done
    echo "tank did not start: $(cat "$work/tank.log")" >&2
    exit 1
}

# One timed run of "$@"; prints seconds.
timed() { settle; local t0 t1; t0=$(now); "$@" >/dev/null; t1=$(now); secs "$t0" "$t1"; }

tank_up() {
    reply=$(curl -sf -X POST "http://127.0.0.1:$port/v1/images" -H 'content-type: application/octet-stream' \
        -H 'x-image-meta-store: chase' -H 'x-image-meta-name: bench' -H 'Expect:' -T "$work/image")
    echo "$reply" | grep -q "\"checksum\":\"$md5\"" || { echo "checksum mismatch: $reply" >&2; exit 1; }
    echo "$reply" | sed -E 's/.*"id":"([^"]+)".*/\1/' >"$work/id"
}
tank_down() { curl -sf -o /dev/null "http://127.0.0.1:$port/v1/images/$(cat "$work/id")"; }
# The same object straight from the proxy with curl: the proxy's own pace, no Tank.
direct_down() {
    curl -sf -o /dev/null -H "X-Auth-Token: $token" "$storage/bench/$(cat "$work/id")"
}
tank_delete() { curl -sf -o /dev/null -X DELETE "http://127.0.0.1:$port/v1/images/$(cat "$work/id")"; }

# $1 = label, $2 = extra [store.chase] lines, $3... = swift upload options.
compare() {
    local label=$1 store=$2
    shift 2
    local cli_up=() cli_down=() cli_raw=() tank_ups=() tank_cold=() tank_downs=() direct=()
    for _ in $(seq "$runs"); do
        cli_up+=("$(timed swift upload "$@" --object-name cli bench-cli "$work/image")")
        cli_down+=("$(timed swift download bench-cli cli -o /dev/null)")
        # Tank's download does not hash the bytes again; this is the same work.
        cli_raw+=("$(timed swift download --ignore-checksum bench-cli cli -o /dev/null)")
        swift delete bench-cli cli >/dev/null
    done
    start_tank "$store"
    for _ in $(seq "$runs"); do
        tank_ups+=("$(timed tank_up)")
        # The CLI's timed download without checksum is its second read of the object,
        # from Swift's page cache; Tank's is timed the same way, after a first read.
        tank_cold+=("$(timed tank_down)")
        tank_downs+=("$(timed tank_down)")
        direct+=("$(timed direct_down)")
        tank_delete
    done
    local cu cd cr tu tc td dd
    cu=$(printf '%s\n' "${cli_up[@]}" | median)
    cd=$(printf '%s\n' "${cli_down[@]}" | median)
    cr=$(printf '%s\n' "${cli_raw[@]}" | median)
    tu=$(printf '%s\n' "${tank_ups[@]}" | median)
    td=$(printf '%s\n' "${tank_downs[@]}" | median)
    dd=$(printf '%s\n' "${direct[@]}" | median)
    tc=$(printf '%s\n' "${tank_cold[@]}" | median)
    pct() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.0f", 100*a/b}'; }
    echo "$label"
    echo "  upload:   swift CLI $(mbps "$bytes" "$cu") MiB/s, tank $(mbps "$bytes" "$tu") MiB/s ($(pct "$cu" "$tu")% of the CLI)"
    echo "  first read:  swift CLI (checking MD5) $(mbps "$bytes" "$cd") MiB/s, tank $(mbps "$bytes" "$tc") MiB/s ($(pct "$cd" "$tc")% of the CLI)"
    echo "  second read: swift CLI --ignore-checksum $(mbps "$bytes" "$cr") MiB/s, tank $(mbps "$bytes" "$td") MiB/s" \
        "($(pct "$cr" "$td")% of the CLI); curl straight from the proxy (third read) $(mbps "$bytes" "$dd") MiB/s"
    echo "  seconds: cli up ${cli_up[*]} / tank up ${tank_ups[*]} / cli down ${cli_down[*]} / cli down unchecked ${cli_raw[*]} / tank first read ${tank_cold[*]} / tank down ${tank_downs[*]} / curl from proxy ${direct[*]}"
}

echo "size ${size_mib} MiB, Swift ready in ${SECONDS} s (including the ${size_mib} MiB test file)"
compare "one object" ""
compare "200 MiB segments (SLO)" "large_object_size = 200
large_object_chunk_size = 200" --use-slo -S $((200 * 1048576))
echo "tank peak RSS (VmHWM) over the segmented runs: $(($(awk '/VmHWM/ {print $2}' "/proc/$tank_pid/status") / 1024)) MiB"
