#!/usr/bin/env bash
# Whole-command benchmark: `netpipe decode --format csv` (payload off) against `tshark -T fields`
# with the same fields, on ../shared/data/pcaps/large-100k.pcap, both pinned to one core, in one run.
# Also checks that memory stays flat: the same file repeated 10 times (1M packets).
#   bench/decode_vs_tshark.sh [PCAP]      (needs tshark and /usr/bin/time; builds netpipe --release)
set -euo pipefail
cd "$(dirname "$0")/.."
pcap=${1:-../shared/data/pcaps/large-100k.pcap}
[ -f "$pcap" ] || { echo "missing $pcap" >&2; exit 1; }
command -v tshark >/dev/null || { echo "tshark is needed (apt-get install tshark)" >&2; exit 1; }
cargo build --release --locked --bin netpipe >/dev/null
bin=./target/release/netpipe
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT

# 1M packets: the 100k file ten times (pcap records appended after the first header).
big=$work/large-1m.pcap
cp "$pcap" "$big"
for _ in $(seq 9); do tail -c +25 "$pcap" >> "$big"; done

fields=(frame.time_epoch eth.src eth.dst eth.type vlan.id arp.opcode ip.version ip.hdr_len ip.dsfield ip.len ip.id
        ip.flags ip.frag_offset ip.ttl ip.proto ip.checksum ip.src ip.dst ipv6.tclass ipv6.flow ipv6.plen ipv6.nxt
        ipv6.hlim ipv6.src ipv6.dst tcp.srcport tcp.dstport tcp.seq_raw tcp.ack_raw tcp.hdr_len tcp.flags
        tcp.window_size_value tcp.checksum tcp.urgent_pointer tcp.options.mss_val tcp.options.wscale.shift
        tcp.options.sack_perm tcp.options.timestamp.tsval tcp.options.timestamp.tsecr udp.srcport udp.dstport
        udp.length udp.checksum icmp.type icmp.code icmp.checksum icmp.ident icmp.seq icmpv6.type icmpv6.code
        dns.id dns.flags.response dns.flags.opcode dns.flags.rcode dns.count.queries dns.count.answers
        dns.count.auth_rr dns.count.add_rr dns.qry.name dns.qry.type frame.len frame.cap_len)
targs=(); for f in "${fields[@]}"; do targs+=(-e "$f"); done

measure() { # name packets command...
  local name=$1 packets=$2; shift 2
  local best=999999 rss=0
  for _ in 1 2 3; do
    /usr/bin/time -f "%e %M" -o "$work/t" taskset -c 0 "$@" > /dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
    read -r secs kb < "$work/t"
    best=$(python3 -c "print(min($best, $secs))"); rss=$kb
  done
  python3 -c "print(f'| {\"$name\"} | {$packets:,} | {$best:.2f} s | {$packets/max($best,0.001):,.0f} | {$rss/1024:.0f} MB |')"
}

echo "| command | packets | wall (best of 3) | packets/s | max RSS |"
echo "|---|---|---|---|---|"
measure "netpipe decode --format csv --payload-bytes 0" 100000 $bin decode -r "$pcap" --format csv --payload-bytes 0
measure "netpipe decode (1M packets)" 1000000 $bin decode -r "$big" --format csv --payload-bytes 0
measure "netpipe decode --format jsonl --payload-bytes 0" 100000 $bin decode -r "$pcap" --format jsonl --payload-bytes 0
measure "tshark -T fields (${#fields[@]} fields)" 100000 tshark -n -r "$pcap" -T fields -E separator=, "${targs[@]}"
echo
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); tshark $(tshark --version | head -1 | awk '{print $3}')"
