#!/usr/bin/env bash
# capture-agent throughput: replay a pcap into local Redis Streams and RabbitMQ (frames/s), then
# find the highest UDP packet rate on lo that the agent captures with zero drops.
#
#   bench/agent_replay.sh [PCAP]          (default ../shared/data/pcaps/large-100k.pcap)
#
# Needs: a release build (cargo build --release -p capture-agent), redis on 127.0.0.1:6379,
# RabbitMQ on 127.0.0.1:5672 (guest/guest), python3 (UDP load generator), root for the live part.
# All traffic goes to 127.0.0.1 only.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=${AGENT_BIN:-$TARGET/release/capture-agent}
PCAP=${1:-$ROOT/../shared/data/pcaps/large-100k.pcap}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
AMQP_URL=${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}
BATCH=${BATCH:-512}
RUNS=${RUNS:-3}
[ -x "$BIN" ] || { echo "build first: cargo build --release -p capture-agent" >&2; exit 1; }
[ -f "$PCAP" ] || { echo "no pcap at $PCAP" >&2; exit 1; }
PACKETS=$(capinfos -c -M "$PCAP" 2>/dev/null | awk -F: '/Number of packets/ {gsub(/ /,"",$2); print $2}' || true)
if [ -z "$PACKETS" ]; then # no capinfos: count the records of a classic pcap
    PACKETS=$(python3 - "$PCAP" <<'PY'
import struct, sys
with open(sys.argv[1], "rb") as f:
    magic = f.read(24)[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        order = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        order = ">"
    else:
        sys.exit("not a classic pcap: install capinfos (wireshark-common) to count its packets")
    n = 0
    while True:
        header = f.read(16)
        if len(header) < 16:
            break
        f.seek(struct.unpack(order + "IIII", header)[2], 1)
        n += 1
print(n)
PY
) || { echo "cannot count the packets of $PCAP" >&2; exit 1; }
fi

now() { date +%s.%N; }

replay() { # URL STREAM [EXTRA AGENT FLAGS...] -> prints frames/s
    local url=$1 stream=$2 start end
    shift 2
    start=$(now)
    "$BIN" --read "$PCAP" --exit-at-eof --broker-url "$url" --stream "$stream" \
        --exchange "$stream" --routing-key "$stream" --max-len 0 --batch-size "$BATCH" \
        --ops-addr 127.0.0.1:0 --stats-interval-secs 3600 "$@" >/dev/null
    end=$(now)
    echo "$PACKETS $start $end" | awk '{printf "%.0f", $1 / ($3 - $2)}'
}

echo "pcap: $PCAP ($PACKETS packets), batch $BATCH, $RUNS runs each"
for run in $(seq "$RUNS"); do
    stream="bench-agent-redis-$$-$run"
    rate=$(replay "$REDIS_URL" "$stream")
    redis-cli -u "$REDIS_URL" DEL "$stream" >/dev/null
    echo "redis-streams run $run: $rate frames/s"
done
# --flows: the same replay with flows metered at the edge and published on {stream}-flows,
# interleaved with a plain replay so both see the same machine load (target: <= 15% slower).
for run in $(seq "$RUNS"); do
    stream="bench-agent-noflows-$$-$run"
    plain=$(replay "$REDIS_URL" "$stream")
    redis-cli -u "$REDIS_URL" DEL "$stream" >/dev/null
    stream="bench-agent-flows-$$-$run"
    flows=$(replay "$REDIS_URL" "$stream" --flows)
    redis-cli -u "$REDIS_URL" DEL "$stream" "$stream-flows" >/dev/null
    echo "redis-streams run $run: $plain frames/s without --flows, $flows with --flows" \
        "($(echo "$plain $flows" | awk '{printf "%+.1f%%", ($2 - $1) * 100 / $1}'))"
done
# The agent's CPU time (user + sys) for the same replay 10 times over (--loop 10): on 2 cores
# shared with Redis, CPU per packet is what the throughput follows.
cpu() { # STREAM [EXTRA AGENT FLAGS...] -> prints CPU seconds
    local stream=$1
    shift
    /usr/bin/time -f "%U %S" -o /tmp/agent-bench-cpu.$$ "$BIN" --read "$PCAP" --loop 10 \
        --exit-at-eof --broker-url "$REDIS_URL" --stream "$stream" --max-len 0 \
        --batch-size "$BATCH" --ops-addr 127.0.0.1:0 --stats-interval-secs 3600 "$@" >/dev/null
    awk '{printf "%.3f", $1 + $2}' /tmp/agent-bench-cpu.$$
}
if [ -x /usr/bin/time ]; then
    for run in $(seq "$RUNS"); do
        stream="bench-agent-cpu-$$-$run"
        plain=$(cpu "$stream")
        flows=$(cpu "$stream-f" --flows)
        redis-cli -u "$REDIS_URL" DEL "$stream" "$stream-f" "$stream-f-flows" >/dev/null
        echo "agent CPU, $((PACKETS * 10)) packets, run $run: ${plain} s without --flows," \
            "${flows} s with --flows ($(echo "$plain $flows" | awk '{printf "%+.1f%%", ($2 - $1) * 100 / $1}'))"
    done
    rm -f /tmp/agent-bench-cpu.$$
fi
[ -n "${FLOWS_ONLY:-}" ] && exit 0
for run in $(seq "$RUNS"); do
    queue="bench-agent-amqp-$$-$run"
    if rate=$(replay "$AMQP_URL" "$queue" 2>/tmp/agent-bench-amqp.err); then
        echo "rabbitmq run $run: $rate frames/s"
    else
        echo "rabbitmq: skipped ($(tail -1 /tmp/agent-bench-amqp.err))"
        break
    fi
    rabbitmqctl -q delete_queue "$queue" >/dev/null 2>&1 || true
done

# Live: UDP to 127.0.0.1 at increasing rates; a rate passes when every datagram was captured
# and nothing was dropped (kernel, interface or buffer).
[ "$(id -u)" = 0 ] || { echo "live: skipped (needs root or CAP_NET_RAW)"; exit 0; }
PORT=${PORT:-47999}
OPS=127.0.0.1:19101
stream="bench-agent-live-$$"
"$BIN" -i lo --filter "udp and dst port $PORT" --broker-url "$REDIS_URL" --stream "$stream" \
    --max-len 0 --batch-size "$BATCH" --ops-addr "$OPS" --stats-interval-secs 3600 >/dev/null &
AGENT=$!
trap 'kill -TERM $AGENT 2>/dev/null; redis-cli -u "$REDIS_URL" DEL "$stream" >/dev/null' EXIT
for _ in $(seq 50); do curl -sf "http://$OPS/ready" >/dev/null && break; sleep 0.1; done
metric() { curl -s "http://$OPS/metrics" | awk -v m="$1" '$1 == m {s += $2} END {print s + 0}'; }
dropped() { curl -s "http://$OPS/metrics" | awk '/^capture_agent_packets_dropped_total/ {s += $2} END {print s + 0}'; }
best=0
for rate in ${RATES:-20000 50000 100000 150000 200000 300000}; do
    before_c=$(metric capture_agent_packets_captured_total); before_d=$(dropped)
    sent=$(python3 - "$rate" "$PORT" <<'PY'
import socket, sys, time
rate, port = int(sys.argv[1]), int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
payload = b"x" * 64
duration, sent, start = 3.0, 0, time.perf_counter()
while True:
    elapsed = time.perf_counter() - start
    if elapsed >= duration:
        break
    due = int(elapsed * rate) + 1
    while sent < due:
        s.sendto(payload, ("127.0.0.1", port)); sent += 1
print(sent, int(sent / (time.perf_counter() - start)))
PY
)
    sleep 2
    after_c=$(metric capture_agent_packets_captured_total); after_d=$(dropped)
    set -- $sent
    captured=$((after_c - before_c)); drops=$((after_d - before_d))
    echo "live target $rate/s: sent $1 (achieved $2/s), captured $captured, dropped $drops"
    if [ "$captured" -eq "$1" ] && [ "$drops" -eq 0 ]; then best=$2; else break; fi
done
echo "live: highest rate with zero drops: $best packets/s"
