#!/usr/bin/env bash
# Benchmark of dataset-builder (not a test): generates a netpipe-like CSV of SIZE_MB (default
# 1000 MB), runs the release build pinned to one core, and reports MB/s and max RSS.
# Usage: bench/dataset_builder.sh            (env: SIZE_MB, WORK, CARGO_TARGET_DIR, KEEP=1)
# Needs /usr/bin/time (Debian package `time`), taskset (util-linux) and awk.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SIZE_MB=${SIZE_MB:-1000}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
WORK=${WORK:-$(mktemp -d /tmp/dataset-builder-bench.XXXXXX)}
INPUT="$WORK/data/agent-1/netdata-bench.csv"

cd "$ROOT"
cargo build --release -p dataset-builder --bin dataset-builder --example gen_netpipe_csv

mkdir -p "$(dirname "$INPUT")"
if [ ! -s "$INPUT" ]; then
  "$TARGET/release/examples/gen_netpipe_csv" "$INPUT" "$SIZE_MB" 1
fi
BYTES=$(stat -c %s "$INPUT")
# Warm the page cache so the figure is the builder's, not the disk's.
cat "$INPUT" > /dev/null

run() {
  local label=$1; shift
  rm -rf "$WORK/out"
  /usr/bin/time -v -o "$WORK/time.txt" taskset -c 0 "$TARGET/release/dataset-builder" \
    --ds-dir "$WORK/data" --output-dir "$WORK/out" --progress-secs 5 "$@" \
    > "$WORK/summary.txt" 2> "$WORK/stderr.txt"
  local wall rss user sys secs
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$WORK/time.txt")
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$WORK/time.txt")
  user=$(awk -F': ' '/User time/ {print $2}' "$WORK/time.txt")
  sys=$(awk -F': ' '/System time/ {print $2}' "$WORK/time.txt")
  secs=$(echo "$wall" | awk -F: '{ if (NF == 3) print $1*3600 + $2*60 + $3; else print $1*60 + $2 }')
  # MB/s per CPU second (user + sys) is the one-core figure even on a busy machine; wall
  # time equals it only when the core is otherwise idle.
  awk -v label="$label" -v bytes="$BYTES" -v secs="$secs" -v cpu="$(awk -v u="$user" -v s="$sys" 'BEGIN {print u + s}')" -v rss="$rss" 'BEGIN {
    printf "| %s | %.0f MB | %.2f s | %.0f MB/s | %.2f s | %.0f MB/s | %.1f MB |\n", label, bytes / 1e6, secs, bytes / 1e6 / secs, cpu, bytes / 1e6 / cpu, rss / 1024
  }'
  sed 's/^/    /' "$WORK/summary.txt" >&2
}

echo "input: $INPUT ($BYTES bytes); one core (taskset -c 0); page cache warm"
echo "| run | input | wall | MB/s (wall) | CPU (user+sys) | MB/s per CPU second | max RSS |"
echo "|---|---|---|---|---|---|---|"
run "rules + cleaned set" --label-rule '1:attack:src=10.66.0.0/16;protocol=tcp'
run "rules + dedup + split 0.2" --label-rule '1:attack:src=10.66.0.0/16;protocol=tcp' \
  --dedup --test-ratio 0.2 --seed 1
run "random labels" --random-labels --seed 1

if [ "${KEEP:-0}" != 1 ]; then
  rm -rf "$WORK"
fi
