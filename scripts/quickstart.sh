#!/usr/bin/env bash
# The main job on the embedded default (no broker): capture file -> decode -> CSV dataset.
#   scripts/quickstart.sh [CAPTURE_FILE] [OUT_DIR]
# Without a capture file it generates a small sample capture (TCP, UDP/DNS, ICMP, ARP, IPv6, VLAN)
# with netpipe's own fixture generator.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh build
cargo build --release --locked --bin netpipe
netpipe=${CARGO_TARGET_DIR:-target}/release/netpipe
input=${1:-}
out=${2:-./datasets}
if [ -z "$input" ]; then
  input=$out/sample.pcap
  mkdir -p "$out"
  "$netpipe" fixture --out "$input"
fi
"$netpipe" run --read "$input" --out "$out"
echo "dataset files:" >&2
ls -l "$out"/*.csv >&2
