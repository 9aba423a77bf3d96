#!/usr/bin/env bash
# Compares `netpipe decode --schema antinex-v1` with what the original network-pipeline made of
# the same capture: kamene (the scapy fork it dissected with) + its `convert_pkt_to_json` + the
# processor's flatten (prefix per kept layer, nested keys joined with "."). Prints the number of
# cells compared and every cell that differs (numbers compare by value, as pandas wrote floats).
#   usage: scripts/compare-antinex-with-original.sh FILE.pcap [MAX_SHOWN]
# Needs python3 and network access to PyPI once: kamene and network-pipeline go into a virtualenv
# under /tmp (never into the repo). Build netpipe first (cargo build).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=${VENV:-/tmp/netpipe-kamene-venv}
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q kamene
  "$VENV/bin/pip" download -q --no-deps network-pipeline -d "$VENV/np"
  (cd "$VENV/np" && python3 -m zipfile -e network_pipeline-*.whl x)
  # The original's converter without its logging dependencies.
  sed -e 's/^from spylunking.*$//' \
      -e 's/^from network_pipeline.utils import ppj/ppj = lambda r: json.dumps(r)/' \
      -e 's/^from network_pipeline.consts import DEBUG_PACKETS/DEBUG_PACKETS = False/' \
      -e 's/^log = console_logger(/import logging; log = logging.getLogger(/' \
      -e "s/^    name='ptoj')/    'ptoj')/" \
      "$VENV"/np/x/network_pipeline/convert_pkt_to_json.py > "$VENV/ptoj.py"
fi
NETPIPE=${NETPIPE:-$ROOT/target/debug/netpipe}
"$NETPIPE" decode --schema antinex-v1 -r "$1" > /tmp/netpipe-antinex-$$.csv
PYTHONPATH="$VENV" "$VENV/bin/python" - "$1" /tmp/netpipe-antinex-$$.csv "${2:-20}" <<'PY' 2>&1 | grep -v "^WARNING\|Failed parsing"
import csv, logging, sys
logging.disable(logging.CRITICAL)
from kamene.all import rdpcap, Ether, Dot3, conf
from ptoj import convert_pkt_to_json
PREFIX = {"ether": "eth_", "ip": "ip_", "ipv6": "ipv6_", "tcp": "tcp_", "udp": "udp_",
          "dns": "dns_", "icmp": "icmp_", "arp": "arp_", "raw": "raw_", "padding": "pad_"}
def flat(prefix, d, out):
    for k, v in d.items():
        if isinstance(v, dict):
            flat(prefix + k + ".", v, out)
        else:
            out[prefix + k] = v
def cell(v):
    if v is None: return ""
    if isinstance(v, bool): return "True" if v else "False"
    if isinstance(v, (list, tuple)): return repr(list(v))
    return str(v)
def same(a, b):
    if a == b: return True
    try: return float(a) == float(b)
    except ValueError: return False
pcap, ours_csv, shown = sys.argv[1], sys.argv[2], int(sys.argv[3])
ours = list(csv.DictReader(open(ours_csv)))
cells = diffs = 0
for i, p in enumerate(rdpcap(pcap)):
    if Ether not in p and Dot3 not in p:
        continue  # the original published Ethernet frames only
    row = {}
    for layer, fields in convert_pkt_to_json(p).items():
        if layer in PREFIX and isinstance(fields, dict):
            flat(PREFIX[layer], fields, row)
    for col, mine in ours[i].items():
        if col == "idx": continue
        cells += 1
        theirs = cell(row.get(col))
        if not same(mine, theirs):
            diffs += 1
            if diffs <= shown:
                print(f"  #{i + 1} {col}: netpipe {mine[:60]!r}, original {theirs[:60]!r} ({p.summary()[:70]})")
    for col in row:
        if col not in ours[i]:
            diffs += 1
            print(f"  #{i + 1} original column {col} is not in antinex-v1")
print(f"{pcap}: {cells} cells, {diffs} differ")
PY
rm -f /tmp/netpipe-antinex-$$.csv
