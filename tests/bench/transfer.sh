#!/usr/bin/env bash
# Benchmark for docs/benchmarks.md: a 2 GiB upload and download through `tank api` (fs store
# + sled) against the machine's limits on the same bytes: md5sum from page cache and
# `cp` + `sync` to the same disk for the upload (a durable upload can beat neither: the fair
# limit is the slower of the two, reference benchmarking.md), curl from nginx's static file
# serving for the download. Also the tank process's
# peak RSS (VmHWM) over both, and the time of `tank plugins` with both plugins installed.
#
# Usage: [API=v2] tests/bench/transfer.sh [SIZE_MIB]   (default 2048; API=v2 moves the bytes
# with PUT/GET /v2/images/<id>/file instead of v1's POST and GET). Needs `cargo xtask dist` first;
# installs nginx-light from Debian if nginx is missing. Not a test: it prints numbers.
set -euo pipefail
cd "$(dirname "$0")/../.."
size_mib=${1:-2048}
root=$(pwd)
tank="$root/dist/bin/tank"
[ -x "$tank" ] || { echo "run cargo xtask dist first" >&2; exit 1; }
if ! command -v nginx >/dev/null; then
    apt-get install -y --no-install-recommends nginx-light >/dev/null
fi

work=$(mktemp -d /var/tmp/tank-bench.XXXXXX)
chmod 755 "$work"   # nginx workers run as an unprivileged user
cleanup() {
    [ -n "${tank_pid:-}" ] && kill "$tank_pid" 2>/dev/null || true
    [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
[ -n "${KEEP_LOG:-}" ] && trap 'cp "$work/tank.log" "$KEEP_LOG"; cleanup' EXIT

mbps() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.0f", b / 1048576 / s }'; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
# The VM reclaims freed pages after ~2 s and idle page cache after ~30 s (benchmarking.md):
# settle before every timed write, re-read the input before every timed read.
settle() { sync; sleep 3; cat "$work/image" >/dev/null; }

bytes=$((size_mib * 1048576))
head -c "$bytes" /dev/urandom >"$work/image"

# Machine limit for the upload: md5sum of the same bytes from page cache.
settle
t0=$(now); md5=$(md5sum "$work/image" | cut -d' ' -f1); t1=$(now)
md5_s=$(secs "$t0" "$t1")

# Machine limit for writing the same bytes durably to the disk the datadir is on.
mkdir -p "$work/var"
settle
t0=$(now); cp "$work/image" "$work/var/copy"; sync; t1=$(now)
cp_s=$(secs "$t0" "$t1")
rm "$work/var/copy"
limit_s=$(awk -v a="$md5_s" -v b="$cp_s" 'BEGIN { print (a > b ? a : b) }')

# nginx serving the same file, for the download limit.
mkdir -p "$work/www" "$work/nginx"
ln "$work/image" "$work/www/image"
cat >"$work/nginx.conf" <<CONF
daemon on; pid $work/nginx.pid; error_log $work/nginx/error.log; worker_processes 1;
events {}
http { access_log off; sendfile on; client_body_temp_path $work/nginx;
  proxy_temp_path $work/nginx; fastcgi_temp_path $work/nginx; uwsgi_temp_path $work/nginx; scgi_temp_path $work/nginx;
  server { listen 127.0.0.1:18080; root $work/www; } }
CONF
nginx -c "$work/nginx.conf"
settle
t0=$(now); curl -sf -o /dev/null http://127.0.0.1:18080/image; t1=$(now)
nginx_s=$(secs "$t0" "$t1")

# Tank from the dist tree, on its own data dirs.
mkdir -p "$work/etc"
sed -e "s|../plugins|$root/dist/plugins|" -e "s|../var|$work/var|" -e 's|api_port = 9292|api_port = 19292|' \
    "$root/dist/etc/tank.toml" >"$work/etc/tank.toml"
TANK_LOG=${TANK_LOG:-warn} "$tank" api --config "$work/etc/tank.toml" 2>"$work/tank.log" &
tank_pid=$!
for _ in $(seq 200); do curl -s -o /dev/null http://127.0.0.1:19292/ && break; sleep 0.05; done

settle
if [ "${API:-v1}" = v2 ]; then
    id=$(curl -sf -X POST http://127.0.0.1:19292/v2/images -H 'content-type: application/json' \
        -d '{"name": "bench", "disk_format": "raw", "container_format": "bare"}' | sed -E 's/.*"id":"([^"]+)".*/\1/')
    t0=$(now)
    curl -sf -X PUT "http://127.0.0.1:19292/v2/images/$id/file" -H 'content-type: application/octet-stream' \
        -H 'Expect:' -T "$work/image"
    t1=$(now)
    reply=$(curl -sf "http://127.0.0.1:19292/v2/images/$id")
    file="/v2/images/$id/file"
else
    t0=$(now)
    reply=$(curl -sf -X POST http://127.0.0.1:19292/v1/images -H 'content-type: application/octet-stream' \
        -H 'x-image-meta-name: bench' -H 'Expect:' -T "$work/image")
    t1=$(now)
    id=$(echo "$reply" | sed -E 's/.*"id":"([^"]+)".*/\1/')
    file="/v1/images/$id"
fi
up_s=$(secs "$t0" "$t1")
echo "$reply" | grep -q "\"checksum\":\"$md5\"" || { echo "checksum mismatch: $reply" >&2; exit 1; }

# As for nginx, the file being served starts in the page cache (fs writes with O_DIRECT).
settle; cat "$work/var/images/$id" >/dev/null
t0=$(now); curl -sf -o /dev/null "http://127.0.0.1:19292$file"; t1=$(now)
down_s=$(secs "$t0" "$t1")
rss_kib=$(awk '/VmHWM/ {print $2}' "/proc/$tank_pid/status")
cpu=$(awk '{print ($14 + $15) / 100}' "/proc/$tank_pid/stat")

# `tank plugins` with fs and sled: median of 21 runs.
runs=()
for _ in $(seq 21); do
    t0=$(now); "$tank" plugins --config "$work/etc/tank.toml" >/dev/null; t1=$(now)
    runs+=("$(secs "$t0" "$t1")")
done
plugins_ms=$(printf '%s\n' "${runs[@]}" | sort -n | awk 'NR == 11 { printf "%.1f", $1 * 1000 }')
runs=()
for _ in $(seq 5); do
    t0=$(now); "$tank" plugins --config "$work/etc/tank.toml" --verify >/dev/null 2>&1 || true; t1=$(now)
    runs+=("$(secs "$t0" "$t1")")
done
verify_ms=$(printf '%s\n' "${runs[@]}" | sort -n | awk 'NR == 3 { printf "%.1f", $1 * 1000 }')

echo "size                    ${size_mib} MiB (API ${API:-v1})"
echo "md5sum (page cache)     $(mbps "$bytes" "$md5_s") MiB/s"
echo "cp + sync (same disk)   $(mbps "$bytes" "$cp_s") MiB/s"
echo "tank upload (fs)        $(mbps "$bytes" "$up_s") MiB/s  = $(awk -v a="$md5_s" -v b="$up_s" 'BEGIN{printf "%.0f", 100*a/b}')% of md5sum, $(awk -v a="$limit_s" -v b="$up_s" 'BEGIN{printf "%.0f", 100*a/b}')% of the slower of md5sum and cp + sync"
echo "curl from nginx         $(mbps "$bytes" "$nginx_s") MiB/s"
echo "tank download (fs)      $(mbps "$bytes" "$down_s") MiB/s  = $(awk -v a="$nginx_s" -v b="$down_s" 'BEGIN{printf "%.0f", 100*a/b}')% of nginx"
echo "tank peak RSS (VmHWM)   $((rss_kib / 1024)) MiB"
echo "tank CPU, both moves    ${cpu} s"
echo "tank plugins (median)   ${plugins_ms} ms"
echo "tank plugins --verify   ${verify_ms} ms"
