#!/usr/bin/env bash
# Benchmark for docs/benchmarks.md: the first and the last page of
# `GET /v1/images/detail?limit=100` with N images in the registry (sled), each the median of
# 21 requests. Images are metadata only (POST /v1/images with headers, no body), created by
# PARALLEL curl processes, each posting a batch of images over one keep-alive connection.
#
# Usage: tests/bench/list.sh [N]   (default 100000). Needs `cargo xtask dist` first.
# Not a test: it prints numbers.
set -euo pipefail
cd "$(dirname "$0")/../.."
count=${1:-100000}
parallel=${PARALLEL:-8}
batch=500
root=$(pwd)
tank="$root/dist/bin/tank"
[ -x "$tank" ] || { echo "run cargo xtask dist first" >&2; exit 1; }

work=$(mktemp -d /var/tmp/tank-bench-list.XXXXXX)
cleanup() {
    [ -n "${tank_pid:-}" ] && kill "$tank_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
# A free loopback port: the kernel picks one for a socket that is closed at once.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"

mkdir -p "$work/etc" "$work/var"
sed -e "s|../plugins|$root/dist/plugins|" -e "s|../var|$work/var|" -e "s|api_port = 9292|api_port = $port|" \
    "$root/dist/etc/tank.toml" >"$work/etc/tank.toml"
TANK_LOG=${TANK_LOG:-warn} "$tank" api --config "$work/etc/tank.toml" 2>"$work/tank.log" &
tank_pid=$!
for _ in $(seq 200); do curl -s -o /dev/null "$base/" && break; sleep 0.05; done

# One curl per batch: every URL on its command line reuses the connection, and -X and -H
# apply to each. Names repeat every 1000 images, as real names do.
post_batch() {
    local first=$1 urls=() n
    for ((n = first; n < first + batch && n < count; n++)); do urls+=("$base/v1/images"); done
    curl -sf -X POST -H "x-image-meta-name: bench-$((first / batch % 2))" \
        -H 'x-image-meta-disk_format: raw' -H 'x-image-meta-container_format: bare' \
        -H 'x-image-meta-is_public: true' "${urls[@]}" >/dev/null
}
export -f post_batch
export base batch count
t0=$(now)
seq 0 "$batch" $((count - 1)) | xargs -P "$parallel" -I{} bash -c 'post_batch {}'
t1=$(now)
create_s=$(secs "$t0" "$t1")
have=$(curl -sf "$base/v1/images/detail?limit=1000&sort_dir=asc" | grep -o '"id"' | wc -l)
[ "$have" -eq 1000 ] || [ "$count" -lt 1000 ] || { echo "expected at least 1000 images, saw $have" >&2; exit 1; }

# The default order is created_at desc: the last page holds the 100 oldest images, so its
# marker is the 101st-oldest, the last of the first 101 in ascending order.
marker=$(curl -sf "$base/v1/images/detail?limit=101&sort_dir=asc" | grep -o '"id":"[^"]*"' | tail -1 | cut -d'"' -f4)

# Median of 21 timed requests; also checks that each page has 100 images.
median_ms() {
    local url=$1 runs=() got
    got=$(curl -sf "$url" | grep -o '"id"' | wc -l)
    [ "$got" -eq 100 ] || { echo "$url gave $got images, not 100" >&2; exit 1; }
    for _ in $(seq 21); do runs+=("$(curl -sf -o /dev/null -w '%{time_total}' "$url")"); done
    printf '%s\n' "${runs[@]}" | sort -n | awk 'NR == 11 { printf "%.1f", $1 * 1000 }'
}
first_ms=$(median_ms "$base/v1/images/detail?limit=100")
last_ms=$(median_ms "$base/v1/images/detail?limit=100&marker=$marker")
name_ms=$(median_ms "$base/v1/images/detail?limit=100&sort_key=name&sort_dir=asc&marker=$marker")
rss_kib=$(awk '/VmRSS/ {print $2}' "/proc/$tank_pid/status")

echo "images                  $count (created in ${create_s} s by $parallel curl processes, $(awk -v n="$count" -v s="$create_s" 'BEGIN{printf "%.0f", n / s}')/s)"
echo "first page (limit=100)  ${first_ms} ms (median of 21)"
echo "last page (limit=100)   ${last_ms} ms (median of 21)"
echo "a middle page by name   ${name_ms} ms (median of 21)"
echo "registry on disk        $(du -sh "$work/var/registry" 2>/dev/null | cut -f1)"
echo "tank RSS after          $((rss_kib / 1024)) MiB"
