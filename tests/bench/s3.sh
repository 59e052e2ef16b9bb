#!/usr/bin/env bash
# Benchmark for docs/benchmarks.md: the same random image (1 GiB by default) up and down
# between the client and a loopback radosgw, two ways:
#   tank  curl -T to `tank api` (x-image-meta-store: s3), curl -o /dev/null back: the whole
#         path through Tank (HTTP, MD5, the plugin ABI, OpenDAL's multipart upload);
#   boto3 the server's own kind of client, boto3's upload_file / download_fileobj (its
#         multipart transfer manager, default settings), in a venv made with the PATH python3.
# Each way runs RUNS times (default 3), alternating, on a fresh object each time; the best
# and the median of each are printed, and the ratio tank/boto3 of the medians.
#
# Usage: tests/bench/s3.sh [SIZE_MIB]
#   env: RUNS; VENV (reused if it exists; default /var/tmp/tank-bench-s3-venv);
#   CARGO_TARGET_DIR; STORE, more lines for [store.s3], e.g.
#   STORE=$'thread_pools = 10\nlarge_object_chunk_size = 8' for boto3's own part settings.
# Needs the release build (`cargo build --release --workspace`) and Ceph's packages
# (tests/servers/ceph.sh starts the cluster). Not a test: it prints numbers.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
size_mib=${1:-1024}
runs=${RUNS:-3}
release="${CARGO_TARGET_DIR:-$root/target}/release"
tank="$release/tank"
[ -x "$tank" ] && [ -f "$release/libtank_plugin_s3.so" ] || {
    echo "build first: cargo build --release --workspace (looked in $release)" >&2
    exit 1
}

work=$(mktemp -d /var/tmp/tank-bench-s3.XXXXXX)
cleanup() {
    [ -n "${tank_pid:-}" ] && kill "$tank_pid" 2>/dev/null || true
    bash tests/servers/ceph.sh down "$work/ceph" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

venv=${VENV:-/var/tmp/tank-bench-s3-venv}
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q boto3
fi

bash tests/servers/ceph.sh up "$work/ceph" $$ >"$work/ceph.env"
endpoint=$(sed -n 's/^endpoint=//p' "$work/ceph.env")
access_key=$(sed -n 's/^access_key=//p' "$work/ceph.env")
secret_key=$(sed -n 's/^secret_key=//p' "$work/ceph.env")

bytes=$((size_mib * 1048576))
head -c "$bytes" /dev/urandom >"$work/image"
md5=$(md5sum "$work/image" | cut -d' ' -f1)

mkdir -p "$work/plugins"
for p in fs sled s3; do
    "$tank" plugins pack --manifest "plugins/$p/tank-plugin.toml" --library "$release/libtank_plugin_$p.so" \
        --out "$work/plugins/$p" >/dev/null
done
cat >"$work/tank.toml" <<EOF
api_host = "127.0.0.1"
api_port = 0
plugin_dirs = ["plugins"]
[store.filesystem]
datadir = "var/images"
[registry.sled]
path = "var/registry"
[store.s3]
host = "$endpoint"
access_key = "$access_key"
secret_key = "$secret_key"
bucket = "tank-bench"
create_bucket_on_put = true
${STORE:-}
EOF
"$tank" api --config "$work/tank.toml" 2>"$work/tank.log" &
tank_pid=$!
for _ in $(seq 100); do grep -q "listening on" "$work/tank.log" && break; sleep 0.1; done
api=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$work/tank.log" | head -n1)
[ -n "$api" ] || { cat "$work/tank.log" >&2; exit 1; }

now() { date +%s.%N; }
rate() { awk -v b="$bytes" -v a="$1" -v z="$2" 'BEGIN { printf "%.0f", b / 1048576 / (z - a) }'; }

tank_run() {
    local t0 t1 t2 id
    t0=$(now)
    id=$(curl -sS -f -X POST -T "$work/image" -H 'content-type: application/octet-stream' \
        -H 'x-image-meta-store: s3' -H 'x-image-meta-name: bench' "$api/v1/images" |
        "$venv/bin/python" -c 'import json, sys; i = json.load(sys.stdin)["image"]; print(i["id"], i["checksum"])')
    t1=$(now)
    [ "${id#* }" = "$md5" ] || { echo "tank stored a different checksum: $id" >&2; exit 1; }
    id=${id% *}
    curl -sS -f -o /dev/null "$api/v1/images/$id"
    t2=$(now)
    curl -sS -f -X DELETE "$api/v1/images/$id" >/dev/null
    echo "$(rate "$t0" "$t1") $(rate "$t1" "$t2")"
}

cat >"$work/boto.py" <<'EOF'
import os, sys, time, boto3
from botocore.config import Config
endpoint, access, secret, path, n = sys.argv[1:6]
s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=access, aws_secret_access_key=secret,
                  region_name="us-east-1",
                  # radosgw 16 predates the default integrity checksums of boto3 >= 1.36.
                  config=Config(s3={"addressing_style": "path"}, request_checksum_calculation="when_required",
                                response_checksum_validation="when_required"))
try:
    s3.create_bucket(Bucket="boto-bench")
except s3.exceptions.BucketAlreadyOwnedByYou:
    pass
key = "image-" + n
class Null:
    """Discards what it is given, like curl -o /dev/null. Seekable, so that boto3 writes its
    parallel ranged GETs at their offsets instead of queueing them in memory."""
    def __init__(self):
        self.at = 0
    def seekable(self):
        return True
    def seek(self, at, whence=0):
        self.at = at
        return at
    def tell(self):
        return self.at
    def write(self, b):
        self.at += len(b)
        return len(b)
t0 = time.time()
s3.upload_file(path, "boto-bench", key)
t1 = time.time()
s3.download_fileobj("boto-bench", key, Null())
t2 = time.time()
s3.delete_object(Bucket="boto-bench", Key=key)
size = os.path.getsize(path)
print("%.0f %.0f" % (size / 1048576 / (t1 - t0), size / 1048576 / (t2 - t1)))
EOF
boto_run() { "$venv/bin/python" "$work/boto.py" "$endpoint" "$access_key" "$secret_key" "$work/image" "$1"; }

: >"$work/tank.runs"
: >"$work/boto.runs"
for n in $(seq "$runs"); do
    tank_run >>"$work/tank.runs"
    boto_run "$n" >>"$work/boto.runs"
done

# best and median MiB/s of column $2 in file $1
stats() { cut -d' ' -f"$2" "$1" | sort -n | awk '{ v[NR] = $1 } END { printf "best %4d  median %4d", v[NR], v[int((NR + 1) / 2)] }'; }
median() { cut -d' ' -f"$2" "$1" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
echo "image: $size_mib MiB, $runs runs each, radosgw $(radosgw --version | awk '{print $3}') on loopback (memstore OSD)"
echo "[store.s3] extra: ${STORE:-(defaults)}" | tr '\n' ' '
echo
for dir in 1 2; do
    name=$([ $dir = 1 ] && echo upload || echo download)
    t=$(median "$work/tank.runs" $dir)
    b=$(median "$work/boto.runs" $dir)
    printf '%-8s tank  %s MiB/s   boto3 %s MiB/s   tank/boto3 %s\n' "$name" \
        "$(stats "$work/tank.runs" $dir)" "$(stats "$work/boto.runs" $dir)" \
        "$(awk -v t="$t" -v b="$b" 'BEGIN { printf "%.2f", t / b }')"
done
tank_rss=$(awk '/VmHWM/ { print int($2 / 1024) }' "/proc/$tank_pid/status")
# utime + stime, fields 14 and 15 of /proc/<pid>/stat (the name in field 2 has no spaces).
tank_cpu=$(awk -v hz="$(getconf CLK_TCK)" '{ printf "%.1f", ($14 + $15) / hz }' "/proc/$tank_pid/stat")
echo "tank api peak RSS: $tank_rss MiB; CPU over its $runs uploads and downloads: $tank_cpu s"
