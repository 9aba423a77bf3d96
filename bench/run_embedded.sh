#!/usr/bin/env bash
# `netpipe run` end to end: the embedded pipeline (capture-agent -> memory:// -> processor ->
# netpipe CSV, SAVE_AFTER_NUM=10000) replays a pcap once. Packets/s = packets captured (from the
# run's summary line) / wall time; peak RSS and CPU from `/usr/bin/time -v`.
# Not a test; figures go to docs/benchmarks.md.
#
#   bench/run_embedded.sh [PCAP] [RUNS] [BINARY...]
#
# PCAP defaults to /tmp/large-1m.pcap (`../shared/data/pcaps/make-large.sh 1000000 /tmp/large-1m.pcap`),
# RUNS to 5. With several binaries (e.g. an old build and a new one), the runs alternate between
# them (A B A B …) so both see the same machine; default: this tree's release build.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PCAP=${1:-/tmp/large-1m.pcap}
RUNS=${2:-5}
shift 2 || shift $# || true
BINS=("$@")
if [ ${#BINS[@]} -eq 0 ]; then
    export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
    (cd "$ROOT" && cargo build --release -q --locked -p netpipe)
    BINS=("$CARGO_TARGET_DIR/release/netpipe")
fi
[ -f "$PCAP" ] || { echo "no pcap at $PCAP (see make-large.sh)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 1; }

echo "pcap: $PCAP, $(nproc) cores, save-after-num ${SAVE_AFTER_NUM:-10000}"
printf '| binary | run | packets | wall s | packets/s | CPU s | peak RSS MB |\n'
printf '|---|---:|---:|---:|---:|---:|---:|\n'
for run in $(seq "$RUNS"); do
    for bin in "${BINS[@]}"; do
        out=$(mktemp -d /tmp/run-bench.XXXXXX)
        start=$EPOCHREALTIME
        /usr/bin/time -v -o "$out/time.txt" "$bin" run --read "$PCAP" --out "$out/ds" \
            --save-after-num "${SAVE_AFTER_NUM:-10000}" > "$out/stdout" 2> "$out/stderr" || {
            echo "run failed ($bin):" >&2; tail -5 "$out/stderr" >&2; exit 1; }
        end=$EPOCHREALTIME
        packets=$(grep -o 'netpipe run: [0-9]* packets captured' "$out/stderr" | grep -o '[0-9]*' | head -1)
        rss_kb=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$out/time.txt")
        cpu=$(awk -F: '/User time|System time/ {s += $2} END {printf "%.2f", s}' "$out/time.txt")
        awk -v b="$bin" -v r="$run" \
            -v p="$packets" -v s="$start" -v e="$end" -v c="$cpu" -v m="$rss_kb" \
            'BEGIN {w = e - s; printf "| %s | %d | %d | %.2f | %.0f | %s | %.0f |\n", b, r, p, w, p / w, c, m / 1024}'
        rm -rf "$out"
    done
done
