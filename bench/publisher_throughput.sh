#!/usr/bin/env bash
# Publisher throughput against the STAND-IN AntiNex server on loopback.
# Usage: bench/publisher_throughput.sh [rows] [batch_rows] [in_flight] [echo_rows=true|false]
# Prints one line per run: rows/s delivered (201-accepted) and the publisher's own CPU per row.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-500000}
BATCH=${2:-1000}
IN_FLIGHT=${3:-4}
ECHO=${4:-true}
PORT=${PORT:-18010}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
cargo build --release -p antinex-standin --bin antinex-standin
cargo build --release -p publisher --example publisher_bench
BIN="$CARGO_TARGET_DIR/release"
"$BIN/antinex-standin" --listen "127.0.0.1:$PORT" --keep-rows false --echo-rows "$ECHO" \
    --prediction-delay-ms 1000 &
STANDIN=$!
trap 'kill $STANDIN 2>/dev/null || true' EXIT
sleep 0.5
echo "stand-in echo_rows=$ECHO; $(nproc) CPUs; $(uname -r)"
ticks() { awk '{print $14 + $15}' "/proc/$STANDIN/stat"; }
BEFORE=$(ticks)
"$BIN/examples/publisher_bench" --url "http://127.0.0.1:$PORT" --rows "$ROWS" \
    --batch-rows "$BATCH" --in-flight "$IN_FLIGHT"
AFTER=$(ticks)
echo "stand-in cpu_s=$(awk -v a="$BEFORE" -v b="$AFTER" -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.2f", (b-a)/hz}')"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
