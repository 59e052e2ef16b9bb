# Helpers shared by the benchmark scripts in tests/bench (sourced, not run). They expect
# `$work` (the script's scratch directory) and `$work/image` (the bytes being moved).

# MiB/s for $1 bytes in $2 seconds.
mbps() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.0f", b / 1048576 / s }'; }
now() { date +%s.%N; }
# Seconds from $1 to $2.
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
# The median of the numbers on stdin, one per line.
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
# $1 as a percentage of $2 (pass times the other way round for rates).
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", 100 * a / b }'; }
# The VM reclaims freed pages after ~2 s and idle page cache after ~30 s
# (shared/reference/benchmarking.md): settle before every timed run, re-read the input.
settle() { sync; sleep 3; cat "$work/image" >/dev/null; }
# One timed run of "$@" after settling; prints seconds.
timed() {
    settle
    local t0 t1
    t0=$(now)
    "$@" >/dev/null
    t1=$(now)
    secs "$t0" "$t1"
}
free_port() { /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# Peak RSS (VmHWM) of pid $1 in MiB.
peak_rss_mib() { echo $(($(awk '/VmHWM/ {print $2}' "/proc/$1/status") / 1024)); }
