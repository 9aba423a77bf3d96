#!/usr/bin/env bash
# End to end: capture-agent replays a pcap (looped) into local Redis Streams while one processor
# turns the frames into netpipe CSV rows (SAVE_AFTER_NUM=10000, fsync before every ack).
# The processor is started first and waited for (/ready), as in a deployment where it is
# already running; wall time runs from the agent's start to the processor's exit after the
# last row is durable (fsync of data, manifest and directory included).
# Not a test; figures go to docs/processor.md and docs/benchmarks.md.
#
#   bench/end_to_end.sh [PCAP] [PACKETS...]   (default large-100k.pcap; 10000 100000 1000000)
#
# Needs redis on 127.0.0.1:6379. PAYLOAD_BYTES (default 0) sets the agent's payload capture.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PCAP=${1:-$ROOT/../shared/data/pcaps/large-100k.pcap}
shift || true
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(10000 100000 1000000)
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
PAYLOAD_BYTES=${PAYLOAD_BYTES:-0}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
cd "$ROOT"
cargo build --release -q --locked -p capture-agent -p processor -p netpipe
BIN="$CARGO_TARGET_DIR/release"
[ -f "$PCAP" ] || { echo "no pcap at $PCAP" >&2; exit 1; }
IN_FILE=$(("$("$BIN/netpipe" decode --format csv --payload-bytes 0 --read "$PCAP" | wc -l)" - 1))

now() { date +%s.%N; }
rss_mb() { awk '/Maximum resident set size/ {printf "%d", $NF / 1024}' "$1"; }
cpu_s() { awk '/User time|System time/ {s += $NF} END {printf "%.2f", s}' "$1"; }

echo "pcap: $PCAP ($IN_FILE packets per pass), payload bytes $PAYLOAD_BYTES, $(nproc) cores"
printf '| packets | wall s | packets/s | agent CPU s | processor CPU s | agent RSS MB | processor RSS MB |\n'
printf '|---:|---:|---:|---:|---:|---:|---:|\n'
for packets in "${SIZES[@]}"; do
    stream="bench-e2e-$$-$packets"
    out=$(mktemp -d /tmp/e2e-bench.XXXXXX)
    loops=$(( (packets + IN_FILE - 1) / IN_FILE ))
    /usr/bin/time -v -o "$out/processor.time" "$BIN/processor" \
        --broker-url "$REDIS_URL" --stream "$stream" --group bench --consumer bench-1 \
        --dead-letter "$stream.dead" --ds-dir "$out" --schema netpipe \
        --save-after-num "${SAVE_AFTER_NUM:-10000}" --stop-after-num "$packets" --ops-addr 127.0.0.1:19102 \
        > "$out/processor.log" 2>&1 &
    processor=$!
    for _ in $(seq 100); do
        curl -sf http://127.0.0.1:19102/ready > /dev/null && break
        sleep 0.1
    done
    start=$(now)
    /usr/bin/time -v -o "$out/agent.time" "$BIN/capture-agent" \
        --read "$PCAP" --loop "$loops" --count "$packets" --exit-at-eof \
        --broker-url "$REDIS_URL" --stream "$stream" --payload-bytes "$PAYLOAD_BYTES" \
        --ops-addr 127.0.0.1:0 --stats-interval-secs 3600 > /dev/null 2> "$out/agent.log"
    wait "$processor"
    end=$(now)
    rows=$(($(cat "$out"/*.csv | wc -l) - $(ls "$out"/*.csv | wc -l)))
    if [ "$rows" -ne "$packets" ]; then
        echo "rows $rows != packets $packets (logs in $out)" >&2
        exit 1
    fi
    awk -v n="$packets" -v s="$start" -v e="$end" \
        -v ac="$(cpu_s "$out/agent.time")" -v pc="$(cpu_s "$out/processor.time")" \
        -v ar="$(rss_mb "$out/agent.time")" -v pr="$(rss_mb "$out/processor.time")" \
        'BEGIN {printf "| %d | %.2f | %d | %s | %s | %s | %s |\n", n, e - s, n / (e - s), ac, pc, ar, pr}'
    redis-cli -u "$REDIS_URL" DEL "$stream" "$stream.dead" > /dev/null
    rm -rf "$out"
done
