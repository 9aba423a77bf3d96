#!/usr/bin/env bash
# Instructions per frame for frame-batch encoding (capture-agent), decoding (processor) and
# netpipe CSV rows (processor), counted by callgrind over the first 25,600 packets of
# large-100k.pcap. Repeatable to a few instructions, unlike wall-clock figures on a shared VM.
# Not a test; figures go to docs/benchmarks.md.
#
#   bench/codec_instructions.sh [PCAP]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PCAP=${1:-$ROOT/../shared/data/pcaps/large-100k.pcap}
[ -f "$PCAP" ] || { echo "no pcap at $PCAP" >&2; exit 1; }
command -v valgrind > /dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 1; }
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
cd "$ROOT"
cargo build --release -q --locked -p netpipe-runtime --example codec_work
BIN="$CARGO_TARGET_DIR/release/examples/codec_work"

instructions() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$BIN" "$PCAP" "$1" 2>&1 \
        | awk '/Collected/ {print $NF}'
}
frames=$("$BIN" "$PCAP" load | sed 's/frames=\([0-9]*\).*/\1/')
base=$(instructions load)
printf '| work | instructions per frame |\n|---|---:|\n'
for mode in encode decode csv; do
    total=$(instructions "$mode")
    printf '| %s | %d |\n' "$mode" $(( (total - base) / frames ))
done
