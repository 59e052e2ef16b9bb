#!/usr/bin/env bash
# Benchmark for docs/benchmarks.md: the http store against curl, the same bytes from the same
# nginx. nginx serves a random file (1 GiB by default) on loopback; the file is registered in
# `tank api` with `x-image-meta-location` (the http store), and read RUNS times (default 5)
# alternately with curl straight from nginx, through nginx's own proxy and through Tank,
# all from page cache. Also a copy-from of the same URL into the fs store (the http store reading, fs
# writing and Tank hashing) against `curl | tee file | md5sum`, and tank's peak RSS.
#
# Usage: tests/bench/http.sh [SIZE_MIB]   (default 1024). Needs `cargo xtask dist` first;
# installs nginx-light from Debian if nginx is missing. Not a test: it prints numbers.
set -euo pipefail
cd "$(dirname "$0")/../.."
size_mib=${1:-1024}
runs=${RUNS:-5}
root=$(pwd)
tank="$root/dist/bin/tank"
[ -x "$tank" ] || { echo "run cargo xtask dist first" >&2; exit 1; }
command -v nginx >/dev/null || apt-get install -y --no-install-recommends nginx-light >/dev/null

work=$(mktemp -d /var/tmp/tank-http-bench.XXXXXX)
chmod 755 "$work"   # nginx workers run as an unprivileged user
cleanup() {
    [ -n "${tank_pid:-}" ] && kill "$tank_pid" 2>/dev/null || true
    [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
# shellcheck source=tests/bench/lib.sh
. tests/bench/lib.sh

bytes=$((size_mib * 1048576))
mkdir -p "$work/www" "$work/nginx" "$work/etc" "$work/var"
head -c "$bytes" /dev/urandom >"$work/image"
ln "$work/image" "$work/www/image"
md5=$(md5sum "$work/image" | cut -d' ' -f1)

nginx_port=$(free_port)
proxy_port=$(free_port)
# A second server relays the first with nginx's own proxy (unbuffered, 1 MiB buffers): what
# relaying the bytes through one more process costs on this machine, Tank's download's shape.
cat >"$work/nginx.conf" <<CONF
daemon on; pid $work/nginx.pid; error_log $work/nginx/error.log; worker_processes 1;
events {}
http { access_log off; sendfile on; client_body_temp_path $work/nginx;
  proxy_temp_path $work/nginx; fastcgi_temp_path $work/nginx; uwsgi_temp_path $work/nginx; scgi_temp_path $work/nginx;
  server { listen 127.0.0.1:$nginx_port; root $work/www; }
  server { listen 127.0.0.1:$proxy_port;
    location / { proxy_pass http://127.0.0.1:$nginx_port; proxy_buffering off;
      proxy_buffer_size 1m; proxy_buffers 4 1m; proxy_busy_buffers_size 2m; } } }
CONF
nginx -c "$work/nginx.conf"
url="http://127.0.0.1:$nginx_port/image"

# Tank from the dist tree, allowed to fetch from this nginx only.
port=$(free_port)
sed -e "s|../plugins|$root/dist/plugins|" -e "s|../var|$work/var|" -e "s|api_port = 9292|api_port = $port|" \
    -e 's|^allowed_hosts = \[\]|allowed_hosts = ["127.0.0.1"]|' -e "s|^allowed_ports = \[80, 443\]|allowed_ports = [$nginx_port]|" \
    "$root/dist/etc/tank.toml" >"$work/etc/tank.toml"
TANK_LOG=${TANK_LOG:-warn} "$tank" api --config "$work/etc/tank.toml" 2>"$work/tank.log" &
tank_pid=$!
for _ in $(seq 200); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.05; done
api="http://127.0.0.1:$port/v1/images"

reply=$(curl -sf -X POST "$api" -H "x-image-meta-location: $url" -H 'x-image-meta-name: bench')
echo "$reply" | grep -q '"status":"active"' || { echo "registering failed: $reply $(cat "$work/tank.log")" >&2; exit 1; }
id=$(echo "$reply" | sed -E 's/.*"id":"([^"]+)".*/\1/')
# The bytes Tank serves are nginx's, checked once before timing anything.
[ "$(curl -sf "$api/$id" | md5sum | cut -d' ' -f1)" = "$md5" ] || { echo "tank served other bytes" >&2; exit 1; }

nginx_down() { curl -sf -o /dev/null "$url"; }
proxy_down() { curl -sf -o /dev/null "http://127.0.0.1:$proxy_port/image"; }
tank_down() { curl -sf -o /dev/null "$api/$id"; }
curl_copy() { curl -sf "$url" | tee "$work/copy" | md5sum; sync "$work/copy"; rm -f "$work/copy"; }
tank_copy() {
    local r
    r=$(curl -sf -X POST "$api" -H "x-glance-api-copy-from: $url" -H 'x-image-meta-name: copy')
    echo "$r" | grep -q "\"checksum\":\"$md5\"" || { echo "copy-from: $r" >&2; exit 1; }
    curl -sf -o /dev/null -X DELETE "$api/$(echo "$r" | sed -E 's/.*"id":"([^"]+)".*/\1/')"
}

nd=() pd=() td=() nc=() tc=()
for _ in $(seq "$runs"); do
    nd+=("$(timed nginx_down)")
    pd+=("$(timed proxy_down)")
    td+=("$(timed tank_down)")
    nc+=("$(timed curl_copy)")
    tc+=("$(timed tank_copy)")
done
n=$(printf '%s\n' "${nd[@]}" | median)
p=$(printf '%s\n' "${pd[@]}" | median)
t=$(printf '%s\n' "${td[@]}" | median)
c=$(printf '%s\n' "${nc[@]}" | median)
k=$(printf '%s\n' "${tc[@]}" | median)
echo "size ${size_mib} MiB, medians of $runs"
echo "download:  curl from nginx $(mbps "$bytes" "$n") MiB/s, tank (http store) $(mbps "$bytes" "$t") MiB/s ($(pct "$n" "$t")% of curl)"
echo "           through nginx's proxy $(mbps "$bytes" "$p") MiB/s ($(pct "$n" "$p")% of curl)"
echo "copy-from: curl | tee file | md5sum $(mbps "$bytes" "$c") MiB/s, tank (http store -> fs) $(mbps "$bytes" "$k") MiB/s ($(pct "$c" "$k")% of curl)"
echo "seconds: curl ${nd[*]} / nginx proxy ${pd[*]} / tank ${td[*]} / curl copy ${nc[*]} / tank copy ${tc[*]}"
echo "tank peak RSS (VmHWM): $(peak_rss_mib "$tank_pid") MiB, CPU $(awk '{print ($14 + $15) / 100}' "/proc/$tank_pid/stat") s"
