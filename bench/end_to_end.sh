#!/usr/bin/env bash
# End to end: capture-agent replays a pcap (looped) into local Redis Streams while one processor
# turns the frames into netpipe CSV rows (SAVE_AFTER_NUM=10000, fsync before every ack).
# The processor is started first and waited for (/ready), as in a deployment where it is
# already running; wall time runs from the agent's start to the processor's exit after the
# last row is durable (fsync of data, manifest and directory included). Both are started
# directly (CPU time and peak RSS come from the "resource usage" line each logs as it stops,
# not from a /usr/bin/time wrapper, whose own start and exit added ~3 ms to a 10k run) and
# timestamps come from bash's $EPOCHREALTIME (no `date` process either).
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

# A field of the JSON "resource usage" line in a service's log.
usage() { grep '"resource usage"' "$1" | grep -o "\"$2\":[0-9.e-]*" | cut -d: -f2; }
rss_mb() { awk -v m="$(usage "$1" max_rss_mb)" 'BEGIN {printf "%d", m}'; }
cpu_s() { awk -v u="$(usage "$1" cpu_user_s)" -v s="$(usage "$1" cpu_system_s)" 'BEGIN {printf "%.2f", u + s}'; }

echo "pcap: $PCAP ($IN_FILE packets per pass), payload bytes $PAYLOAD_BYTES, $(nproc) cores"
printf '| packets | wall s | packets/s | agent CPU s | processor CPU s | agent RSS MB | processor RSS MB |\n'
printf '|---:|---:|---:|---:|---:|---:|---:|\n'
for packets in "${SIZES[@]}"; do
    stream="bench-e2e-$$-$packets"
    out=$(mktemp -d /tmp/e2e-bench.XXXXXX)
    loops=$(( (packets + IN_FILE - 1) / IN_FILE ))
    LOG_JSON=1 "$BIN/processor" \
        --broker-url "$REDIS_URL" --stream "$stream" --group bench --consumer bench-1 \
        --dead-letter "$stream.dead" --ds-dir "$out" --schema netpipe \
        --save-after-num "${SAVE_AFTER_NUM:-10000}" --stop-after-num "$packets" --ops-addr 127.0.0.1:19102 \
        > "$out/processor.log" 2>&1 &
    processor=$!
    for _ in $(seq 100); do
        curl -sf http://127.0.0.1:19102/ready > /dev/null && break
        sleep 0.1
    done
    start=$EPOCHREALTIME
    LOG_JSON=1 "$BIN/capture-agent" \
        --read "$PCAP" --loop "$loops" --count "$packets" --exit-at-eof \
        --broker-url "$REDIS_URL" --stream "$stream" --payload-bytes "$PAYLOAD_BYTES" \
        --ops-addr 127.0.0.1:0 --stats-interval-secs 3600 > "$out/agent.log" 2>&1
    wait "$processor"
    end=$EPOCHREALTIME
    rows=$(($(cat "$out"/*.csv | wc -l) - $(ls "$out"/*.csv | wc -l)))
    if [ "$rows" -ne "$packets" ]; then
        echo "rows $rows != packets $packets (logs in $out)" >&2
        exit 1
    fi
    awk -v n="$packets" -v s="$start" -v e="$end" \
        -v ac="$(cpu_s "$out/agent.log")" -v pc="$(cpu_s "$out/processor.log")" \
        -v ar="$(rss_mb "$out/agent.log")" -v pr="$(rss_mb "$out/processor.log")" \
        'BEGIN {printf "| %d | %.2f | %d | %s | %s | %s | %s |\n", n, e - s, n / (e - s), ac, pc, ar, pr}'
    redis-cli -u "$REDIS_URL" DEL "$stream" "$stream.dead" > /dev/null
    rm -rf "$out"
done
