#!/usr/bin/env bash
# Whole-command benchmark of flows: `netpipe flows --format csv` (release) against NFStream 6.6.0
# (statistical_analysis=True, splt_analysis=10, n_dissections=0, one meter), both pinned to one
# core (taskset -c 0), in the same run, on:
#   1. the 1M-packet file that ../shared/data/pcaps/make-large.sh 1000000 builds (into $WORK);
#   2. a capture of 1M packets that are 1M distinct UDP flows (made here), for the RSS of a
#      table of 1M concurrent flows.
# Prints a markdown table: seconds (best of $RUNS), packets/s, peak RSS.
#   bench/flows.sh            (needs editcap/mergecap, python3 and PyPI for the NFStream venv)
# Env: WORK (default /tmp/netpipe-flows-bench), NFS_VENV (default ~/.cache/netpipe/nfstream-6.6.0),
#      RUNS (default 3), SKIP_NFSTREAM=1.
set -euo pipefail
cd "$(dirname "$0")/.."
work=${WORK:-/tmp/netpipe-flows-bench}
venv=${NFS_VENV:-$HOME/.cache/netpipe/nfstream-6.6.0}
runs=${RUNS:-3}
mkdir -p "$work"
[ -n "${NO_BUILD:-}" ] || cargo build --release --locked --bin netpipe >/dev/null
bin=./target/release/netpipe

large=$work/large-1m.pcap
[ -s "$large" ] || ../shared/data/pcaps/make-large.sh 1000000 "$large" >/dev/null
many=$work/flows-1m.pcap
[ -s "$many" ] || python3 - "$many" <<'PY'
# 1M Ethernet/IPv4/UDP packets, each its own flow (10.x.y.z:port -> 192.0.2.1:53), 1 µs apart.
import struct, sys
def csum(h):
    s = sum(struct.unpack("!10H", h))
    while s > 0xffff: s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1))
    eth = bytes.fromhex("020000000002020000000001") + b"\x08\x00"
    payload = b"x" * 18
    for i in range(1_000_000):
        src = bytes([10, (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff])
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + 8 + len(payload), i & 0xffff, 0, 64, 17, 0,
                         src, bytes([192, 0, 2, 1]))
        ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
        udp = struct.pack("!HHHH", 1024 + (i % 50000), 53, 8 + len(payload), 0)
        pkt = eth + ip + udp + payload
        t = 1_700_000_000_000_000 + i
        f.write(struct.pack("<IIII", t // 1_000_000, t % 1_000_000, len(pkt), len(pkt)))
        f.write(pkt)
PY

if [ -z "${SKIP_NFSTREAM:-}" ] && ! "$venv/bin/python" -c 'import nfstream' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check nfstream==6.6.0
fi
cat > "$work/nfstream_csv.py" <<'PY'
import sys
from nfstream import NFStreamer
NFStreamer(source=sys.argv[1], statistical_analysis=True, splt_analysis=10, n_dissections=0,
           n_meters=1, idle_timeout=120, active_timeout=1800, accounting_mode=0).to_csv(path=sys.argv[2])
PY

measure() { # name packets command...
  local name=$1 packets=$2; shift 2
  local best=999999 rss=0
  for _ in $(seq "$runs"); do
    /usr/bin/time -f "%e %M" -o "$work/t" taskset -c 0 "$@" > "$work/out.csv" 2>"$work/err" \
      || { cat "$work/err" >&2; exit 1; }
    read -r secs kb < "$work/t"
    best=$(python3 -c "print(min($best, $secs))"); rss=$kb
  done
  python3 -c "print(f'| {\"$name\"} | {$packets:,} | {$best:.2f} s | {$packets/max($best,0.001):,.0f} | {$rss/1024:.0f} MB |')"
}

echo "| command | packets | time (best of $runs) | packets/s | peak RSS |"
echo "|---|---|---|---|---|"
measure "netpipe flows --format csv, large-1m" 1000000 "$bin" flows --format csv -r "$large"
measure "netpipe flows --format csv, 1M distinct flows" 1000000 "$bin" flows --format csv -r "$many"
if [ -z "${SKIP_NFSTREAM:-}" ]; then
  measure "NFStream 6.6.0 to_csv, large-1m" 1000000 "$venv/bin/python" "$work/nfstream_csv.py" "$large" "$work/nfs.csv"
  measure "NFStream 6.6.0 to_csv, 1M distinct flows" 1000000 "$venv/bin/python" "$work/nfstream_csv.py" "$many" "$work/nfs.csv"
fi
