#!/usr/bin/env bash
# Wireshark oracles kept in the repo (shared/packet/tests/oracles/NAME.tshark.csv) for captures of the
# shared corpus that ../shared/data/pcaps/make-oracles.sh does not cover, with extra columns for
# the 802.3/LLC and MPLS fields. Same tshark options as make-oracles.sh (no reassembly; one row
# per frame; repeated fields comma-separated in one cell).
#   usage: scripts/make-extra-oracles.sh            (needs tshark; made with TShark 4.0.17)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PCAPS=${PCAPS:-$ROOT/../shared/data/pcaps}
OUT=$ROOT/shared/packet/tests/oracles
FIELDS=(frame.number eth.type ip.version ip.hdr_len ip.len ip.ttl ip.proto ip.src ip.dst
        ipv6.plen ipv6.nxt ipv6.hlim tcp.srcport tcp.dstport tcp.seq_raw tcp.ack_raw
        tcp.flags tcp.window_size_value tcp.options.mss_val tcp.options.wscale.shift
        udp.srcport udp.dstport udp.length icmp.type icmp.code arp.opcode dns.id
        dns.qry.name dns.count.queries dns.count.answers
        vlan.id vlan.etype sll.etype
        eth.len llc.dsap llc.ssap llc.control llc.oui llc.pid
        mpls.label mpls.exp mpls.bottom mpls.ttl)
FILES=(zeek-mixed-vlan-mpls.pcap pcpp-VlanPackets.pcap malformed/tcpdump-mpls-label-heapoverflow.pcap)
args=()
for f in "${FIELDS[@]}"; do args+=(-e "$f"); done
mkdir -p "$OUT"
for f in "${FILES[@]}"; do
  out="$OUT/$(basename "$f").tshark.csv"
  tshark -r "$PCAPS/$f" -n \
    -o tcp.desegment_tcp_streams:FALSE -o ip.defragment:FALSE -o ipv6.defragment:FALSE \
    -T fields -E header=y -E separator=, -E quote=d "${args[@]}" > "$out" 2>/dev/null
  echo "$out: $(($(wc -l < "$out") - 1)) rows"
done
