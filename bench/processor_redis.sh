#!/usr/bin/env bash
# Processor throughput and memory: one processor draining a local Redis stream of N synthetic
# frames (netpipe schema, payload off) with SAVE_AFTER_NUM=10000. Not a test; figures go to
# docs/processor.md.
#
#   bench/processor_redis.sh [FRAMES] [REDIS_URL]
set -euo pipefail
FRAMES=${1:-1000000}
REDIS_URL=${2:-redis://127.0.0.1:6379}
STREAM="bench-processor-$$"
OUT=$(mktemp -d /tmp/processor-bench.XXXXXX)
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
cargo build --release -q -p processor --bin processor --example fill_stream
BIN="$CARGO_TARGET_DIR/release"

echo "filling $STREAM with $FRAMES frames..."
"$BIN/examples/fill_stream" "$REDIS_URL" "$STREAM" "$FRAMES" 256

echo "processing..."
/usr/bin/time -v "$BIN/processor" \
  --broker-url "$REDIS_URL" --stream "$STREAM" --group bench --consumer bench-1 \
  --dead-letter "$STREAM.dead" --ds-dir "$OUT" --schema netpipe \
  --save-after-num 10000 --stop-after-num "$FRAMES" --prefetch 64 --ops-addr "" \
  > "$OUT/processor.log" 2> "$OUT/time.txt"

ELAPSED=$(grep 'Elapsed (wall clock)' "$OUT/time.txt" | awk '{print $NF}')
RSS_KB=$(grep 'Maximum resident set size' "$OUT/time.txt" | awk '{print $NF}')
SECS=$(echo "$ELAPSED" | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
CPU=$(awk '/User time|System time/ {s += $NF} END {printf "%.2f", s}' "$OUT/time.txt")
ROWS=$(cat "$OUT"/*.csv | wc -l)
ROWS=$((ROWS - $(ls "$OUT"/*.csv | wc -l)))
echo "rows=$ROWS elapsed=${SECS}s rows_per_s=$(awk -v r="$ROWS" -v s="$SECS" 'BEGIN{printf "%d", r/s}') cpu=${CPU}s max_rss=$((RSS_KB / 1024))MB"
redis-cli -u "$REDIS_URL" DEL "$STREAM" "$STREAM.dead" > /dev/null
rm -rf "$OUT"
