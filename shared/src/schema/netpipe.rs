//! The `netpipe` schema, version 1: every field the Frame has, with its real meaning.
//!
//! Rules (docs/schemas.md has the column table): absent layer or field = empty cell; integers in
//! decimal; booleans `0`/`1` (empty when their layer is absent); addresses in their usual text
//! form; `ts` RFC 3339 UTC with 9 fractional digits; lists joined with a space (`tcp_opt_sack`
//! blocks as `left-right`), decode issues joined with `;`. The order below is the header order.

use super::{CellOut, Column, ColumnSchema};
use crate::frame::Frame;

/// Writes space-separated integers.
fn int_list<I: itoa::Integer + Copy>(o: &mut CellOut<'_>, items: &[I]) {
    for (i, v) in items.iter().enumerate() {
        if i > 0 {
            o.byte(b' ');
        }
        o.int(*v);
    }
}

/// A column whose cell depends on the frame only.
macro_rules! col {
    ($name:literal, |$f:ident, $o:ident| $body:expr) => {
        Column {
            name: $name,
            write: |r, _, $o| {
                let $f: &Frame = r.frame;
                $body
            },
        }
    };
}

/// The `netpipe` v1 schema.
pub static NETPIPE: ColumnSchema = ColumnSchema {
    name: "netpipe",
    version: 1,
    columns: NETPIPE_COLUMNS,
};

static NETPIPE_COLUMNS: &[Column] =
    &[
        // capture
        col!("ts", |f, o| o.ts_rfc3339(f.ts_ns)),
        col!("agent", |f, o| o.text(&f.agent)),
        col!("seq", |f, o| o.int(f.seq)),
        col!("boot", |f, o| o.int(f.boot)),
        col!("wire_len", |f, o| o.int(f.wire_len)),
        col!("cap_len", |f, o| o.int(f.cap_len)),
        col!("link", |f, o| o.int(f.link)),
        // link layer
        col!("eth_src", |f, o| if let Some(e) = &f.eth {
            o.mac(&e.src)
        }),
        col!("eth_dst", |f, o| if let Some(e) = &f.eth {
            o.mac(&e.dst)
        }),
        col!("eth_type", |f, o| o.opt_int(f.inner_ether_type())),
        col!("sll_pkttype", |f, o| o
            .opt_int(f.sll.as_ref().map(|s| s.pkttype))),
        col!("vlan_id", |f, o| o.opt_int(f.vlan.first().map(|t| t.id))),
        col!("vlan_pcp", |f, o| o.opt_int(f.vlan.first().map(|t| t.pcp))),
        col!("vlan_inner_id", |f, o| if f.vlan.len() > 1 {
            o.opt_int(f.vlan.last().map(|t| t.id))
        }),
        // ARP
        col!("arp_op", |f, o| o.opt_int(f.arp.as_ref().map(|a| a.op))),
        col!("arp_hwtype", |f, o| o
            .opt_int(f.arp.as_ref().map(|a| a.hwtype))),
        col!("arp_ptype", |f, o| o
            .opt_int(f.arp.as_ref().map(|a| a.ptype))),
        col!("arp_hwlen", |f, o| o
            .opt_int(f.arp.as_ref().map(|a| a.hwlen))),
        col!("arp_plen", |f, o| o.opt_int(f.arp.as_ref().map(|a| a.plen))),
        col!("arp_hwsrc", |f, o| if let Some(a) = &f.arp {
            o.text(&a.hwsrc)
        }),
        col!("arp_psrc", |f, o| if let Some(a) = &f.arp {
            o.text(&a.psrc)
        }),
        col!("arp_hwdst", |f, o| if let Some(a) = &f.arp {
            o.text(&a.hwdst)
        }),
        col!("arp_pdst", |f, o| if let Some(a) = &f.arp {
            o.text(&a.pdst)
        }),
        // IP (either version)
        col!("ip_version", |f, o| if f.ipv4.is_some() {
            o.byte(b'4')
        } else if f.ipv6.is_some() {
            o.byte(b'6')
        }),
        col!(
            "ip_is_fragment",
            |f, o| if f.ipv4.is_some() || f.ipv6.is_some() {
                o.bool01(f.is_fragment())
            }
        ),
        // IPv4
        col!("ip_ihl", |f, o| o.opt_int(f.ipv4.as_ref().map(|i| i.ihl))),
        col!("ip_tos", |f, o| o.opt_int(f.ipv4.as_ref().map(|i| i.tos))),
        col!("ip_len", |f, o| o.opt_int(f.ipv4.as_ref().map(|i| i.len))),
        col!("ip_id", |f, o| o.opt_int(f.ipv4.as_ref().map(|i| i.id))),
        col!("ip_flags", |f, o| o
            .opt_int(f.ipv4.as_ref().map(|i| i.flags))),
        col!("ip_frag", |f, o| o.opt_int(f.ipv4.as_ref().map(|i| i.frag))),
        col!("ip_ttl", |f, o| o.opt_int(f.ipv4.as_ref().map(|i| i.ttl))),
        col!("ip_proto", |f, o| o
            .opt_int(f.ipv4.as_ref().map(|i| i.proto))),
        col!("ip_chksum", |f, o| o
            .opt_int(f.ipv4.as_ref().map(|i| i.chksum))),
        col!("ip_src", |f, o| if let Some(i) = &f.ipv4 {
            o.ipv4(i.src)
        }),
        col!("ip_dst", |f, o| if let Some(i) = &f.ipv4 {
            o.ipv4(i.dst)
        }),
        col!("ip_options", |f, o| if let Some(opts) =
            f.ipv4.as_ref().and_then(|i| i.options.as_deref())
        {
            o.text(opts)
        }),
        // IPv6
        col!("ipv6_tc", |f, o| o.opt_int(f.ipv6.as_ref().map(|i| i.tc))),
        col!("ipv6_fl", |f, o| o.opt_int(f.ipv6.as_ref().map(|i| i.fl))),
        col!("ipv6_plen", |f, o| o
            .opt_int(f.ipv6.as_ref().map(|i| i.plen))),
        col!("ipv6_nh", |f, o| o
            .opt_int(f.ipv6.as_ref().map(|i| i.upper))),
        col!("ipv6_hlim", |f, o| o
            .opt_int(f.ipv6.as_ref().map(|i| i.hlim))),
        col!("ipv6_src", |f, o| if let Some(i) = &f.ipv6 {
            o.ipv6(&i.src)
        }),
        col!("ipv6_dst", |f, o| if let Some(i) = &f.ipv6 {
            o.ipv6(&i.dst)
        }),
        col!("ipv6_ext", |f, o| if let Some(i) = &f.ipv6 {
            int_list(o, &i.ext)
        }),
        col!("ipv6_frag_id", |f, o| o.opt_int(
            f.ipv6.as_ref().and_then(|i| i.frag).map(|fr| fr.id)
        )),
        // TCP
        col!("tcp_sport", |f, o| o
            .opt_int(f.tcp.as_ref().map(|t| t.sport))),
        col!("tcp_dport", |f, o| o
            .opt_int(f.tcp.as_ref().map(|t| t.dport))),
        col!("tcp_seq", |f, o| o.opt_int(f.tcp.as_ref().map(|t| t.seq))),
        col!("tcp_ack", |f, o| o.opt_int(f.tcp.as_ref().map(|t| t.ack))),
        col!("tcp_dataofs", |f, o| o
            .opt_int(f.tcp.as_ref().map(|t| t.dataofs))),
        col!("tcp_flags", |f, o| o
            .opt_int(f.tcp.as_ref().map(|t| t.flags))),
        col!("tcp_window", |f, o| o
            .opt_int(f.tcp.as_ref().map(|t| t.window))),
        col!("tcp_chksum", |f, o| o
            .opt_int(f.tcp.as_ref().map(|t| t.chksum))),
        col!("tcp_urgptr", |f, o| o
            .opt_int(f.tcp.as_ref().map(|t| t.urgptr))),
        col!("tcp_opt_kinds", |f, o| if let Some(t) = &f.tcp {
            int_list(o, &t.opts.kinds)
        }),
        col!("tcp_opt_mss", |f, o| o
            .opt_int(f.tcp.as_ref().and_then(|t| t.opts.mss))),
        col!("tcp_opt_wscale", |f, o| o
            .opt_int(f.tcp.as_ref().and_then(|t| t.opts.wscale))),
        col!("tcp_opt_sackok", |f, o| o
            .opt_bool01(f.tcp.as_ref().map(|t| t.opts.sackok))),
        col!("tcp_opt_sack", |f, o| if let Some(t) = &f.tcp {
            for (i, (l, r)) in t.opts.sack.iter().enumerate() {
                if i > 0 {
                    o.byte(b' ');
                }
                o.int(*l);
                o.byte(b'-');
                o.int(*r);
            }
        }),
        col!("tcp_opt_ts_val", |f, o| o
            .opt_int(f.tcp.as_ref().and_then(|t| t.opts.ts_val))),
        col!("tcp_opt_ts_ecr", |f, o| o
            .opt_int(f.tcp.as_ref().and_then(|t| t.opts.ts_ecr))),
        // UDP
        col!("udp_sport", |f, o| o.opt_int(f.udp.map(|u| u.sport))),
        col!("udp_dport", |f, o| o.opt_int(f.udp.map(|u| u.dport))),
        col!("udp_len", |f, o| o.opt_int(f.udp.map(|u| u.len))),
        col!("udp_chksum", |f, o| o.opt_int(f.udp.map(|u| u.chksum))),
        // ICMP
        col!("icmp_type", |f, o| o.opt_int(f.icmp.map(|i| i.icmp_type))),
        col!("icmp_code", |f, o| o.opt_int(f.icmp.map(|i| i.code))),
        col!("icmp_chksum", |f, o| o.opt_int(f.icmp.map(|i| i.chksum))),
        col!("icmp_id", |f, o| o.opt_int(f.icmp.and_then(|i| i.id))),
        col!("icmp_seq", |f, o| o.opt_int(f.icmp.and_then(|i| i.seq))),
        col!(
            "icmp_gw",
            |f, o| if let Some(gw) = f.icmp.and_then(|i| i.gw) {
                o.ipv4(gw)
            }
        ),
        // ICMPv6
        col!("icmpv6_type", |f, o| o
            .opt_int(f.icmpv6.map(|i| i.icmp_type))),
        col!("icmpv6_code", |f, o| o.opt_int(f.icmpv6.map(|i| i.code))),
        col!("icmpv6_chksum", |f, o| o
            .opt_int(f.icmpv6.map(|i| i.chksum))),
        col!("icmpv6_id", |f, o| o.opt_int(f.icmpv6.and_then(|i| i.id))),
        col!("icmpv6_seq", |f, o| o.opt_int(f.icmpv6.and_then(|i| i.seq))),
        // DNS
        col!("dns_id", |f, o| o.opt_int(f.dns.as_ref().map(|d| d.id))),
        col!("dns_qr", |f, o| o.opt_bool01(f.dns.as_ref().map(|d| d.qr))),
        col!("dns_opcode", |f, o| o
            .opt_int(f.dns.as_ref().map(|d| d.opcode))),
        col!("dns_aa", |f, o| o.opt_bool01(f.dns.as_ref().map(|d| d.aa))),
        col!("dns_tc", |f, o| o.opt_bool01(f.dns.as_ref().map(|d| d.tc))),
        col!("dns_rd", |f, o| o.opt_bool01(f.dns.as_ref().map(|d| d.rd))),
        col!("dns_ra", |f, o| o.opt_bool01(f.dns.as_ref().map(|d| d.ra))),
        col!("dns_z", |f, o| o.opt_bool01(f.dns.as_ref().map(|d| d.z))),
        col!("dns_ad", |f, o| o.opt_bool01(f.dns.as_ref().map(|d| d.ad))),
        col!("dns_cd", |f, o| o.opt_bool01(f.dns.as_ref().map(|d| d.cd))),
        col!("dns_rcode", |f, o| o
            .opt_int(f.dns.as_ref().map(|d| d.rcode))),
        col!("dns_qdcount", |f, o| o
            .opt_int(f.dns.as_ref().map(|d| d.qdcount))),
        col!("dns_ancount", |f, o| o
            .opt_int(f.dns.as_ref().map(|d| d.ancount))),
        col!("dns_nscount", |f, o| o
            .opt_int(f.dns.as_ref().map(|d| d.nscount))),
        col!("dns_arcount", |f, o| o
            .opt_int(f.dns.as_ref().map(|d| d.arcount))),
        col!(
            "dns_qname",
            |f, o| if let Some(q) = f.dns.as_ref().and_then(|d| d.qname.as_deref()) {
                o.text(q)
            }
        ),
        col!("dns_qtype", |f, o| o
            .opt_int(f.dns.as_ref().and_then(|d| d.qtype))),
        col!("dns_qclass", |f, o| o
            .opt_int(f.dns.as_ref().and_then(|d| d.qclass))),
        // payload and trailer
        col!("payload_len", |f, o| o
            .opt_int(f.payload.as_ref().map(|p| p.len))),
        col!("payload_hex", |f, o| if let Some(h) =
            f.payload.as_ref().and_then(|p| p.hex.as_deref())
        {
            o.text(h)
        }),
        col!("payload_capped", |f, o| o
            .opt_bool01(f.payload.as_ref().map(|p| p.capped))),
        col!("padding_len", |f, o| o
            .opt_int(f.padding.as_ref().map(|p| p.len))),
        col!(
            "decode_errors",
            |f, o| for (i, e) in f.errors.iter().enumerate() {
                if i > 0 {
                    o.byte(b';');
                }
                o.safe(e.as_str().as_bytes());
            }
        ),
    ];
