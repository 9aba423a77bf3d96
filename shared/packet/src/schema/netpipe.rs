//! The `netpipe` schema, version 2: every field the Frame has, with its real meaning.
//! Version 2 is version 1 plus the 802.3/LLC and MPLS columns at the end, so `netpipe-v1` (the
//! frozen v1 header) is the first [`V1_COLUMNS`] columns.
//!
//! Rules (docs/schemas.md has the column table): absent layer or field = empty cell; integers in
//! decimal; booleans `0`/`1` (empty when their layer is absent); addresses in their usual text
//! form; `ts` RFC 3339 UTC with 9 fractional digits; lists joined with a space (`tcp_opt_sack`
//! blocks as `left-right`), decode issues joined with `;`. The order below is the header order.

use super::{CellOut, Column, ColumnSchema, Layer};
use crate::frame::Frame;

/// Writes space-separated integers.
fn int_list<I: crate::ascii_out::Decimal>(o: &mut CellOut<'_>, items: &[I]) {
    for (i, v) in items.iter().enumerate() {
        if i > 0 {
            o.byte(b' ');
        }
        o.int(*v);
    }
}

/// A column whose cell depends on the frame only.
macro_rules! col {
    ($layer:ident, $name:literal, |$f:ident, $o:ident| $body:expr) => {
        Column {
            name: $name,
            layer: Layer::$layer,
            write: |r, _, $o| {
                let $f: &Frame = r.frame;
                $body
            },
        }
    };
}

/// The `netpipe` schema, current version (2).
pub static NETPIPE: ColumnSchema = ColumnSchema {
    name: "netpipe",
    version: 2,
    columns: NETPIPE_COLUMNS,
};

/// Number of columns of `netpipe` v1 (everything before `eth_len`).
pub const V1_COLUMNS: usize = 100;

/// `netpipe` v1: the v1 header, for datasets that must keep it.
pub static NETPIPE_V1: ColumnSchema = ColumnSchema {
    name: "netpipe-v1",
    version: 1,
    columns: NETPIPE_COLUMNS.split_at(V1_COLUMNS).0,
};

const NETPIPE_COLUMNS: &[Column] =
    &[
        // capture
        col!(Always, "ts", |f, o| o.ts_rfc3339(f.ts_ns)),
        col!(Always, "agent", |f, o| o.text(&f.agent)),
        col!(Always, "seq", |f, o| o.int(f.seq)),
        col!(Always, "boot", |f, o| o.int(f.boot)),
        col!(Always, "wire_len", |f, o| o.int(f.wire_len)),
        col!(Always, "cap_len", |f, o| o.int(f.cap_len)),
        col!(Always, "link", |f, o| o.int(f.link)),
        // link layer
        col!(Eth, "eth_src", |f, o| if let Some(e) = &f.eth {
            o.mac(&e.src)
        }),
        col!(Eth, "eth_dst", |f, o| if let Some(e) = &f.eth {
            o.mac(&e.dst)
        }),
        col!(Always, "eth_type", |f, o| o.opt_int(f.inner_ether_type())),
        col!(Sll, "sll_pkttype", |f, o| o
            .opt_int(f.sll.as_ref().map(|s| s.pkttype))),
        col!(Vlan, "vlan_id", |f, o| o
            .opt_int(f.vlan.first().map(|t| t.id))),
        col!(Vlan, "vlan_pcp", |f, o| o
            .opt_int(f.vlan.first().map(|t| t.pcp))),
        col!(Vlan, "vlan_inner_id", |f, o| if f.vlan.len() > 1 {
            o.opt_int(f.vlan.last().map(|t| t.id))
        }),
        // ARP
        col!(Arp, "arp_op", |f, o| o
            .opt_int(f.arp.as_ref().map(|a| a.op))),
        col!(Arp, "arp_hwtype", |f, o| o
            .opt_int(f.arp.as_ref().map(|a| a.hwtype))),
        col!(Arp, "arp_ptype", |f, o| o
            .opt_int(f.arp.as_ref().map(|a| a.ptype))),
        col!(Arp, "arp_hwlen", |f, o| o
            .opt_int(f.arp.as_ref().map(|a| a.hwlen))),
        col!(Arp, "arp_plen", |f, o| o
            .opt_int(f.arp.as_ref().map(|a| a.plen))),
        col!(Arp, "arp_hwsrc", |f, o| if let Some(a) = &f.arp {
            o.text(&a.hwsrc)
        }),
        col!(Arp, "arp_psrc", |f, o| if let Some(a) = &f.arp {
            o.text(&a.psrc)
        }),
        col!(Arp, "arp_hwdst", |f, o| if let Some(a) = &f.arp {
            o.text(&a.hwdst)
        }),
        col!(Arp, "arp_pdst", |f, o| if let Some(a) = &f.arp {
            o.text(&a.pdst)
        }),
        // IP (either version)
        col!(Ip, "ip_version", |f, o| if f.ipv4.is_some() {
            o.byte(b'4')
        } else if f.ipv6.is_some() {
            o.byte(b'6')
        }),
        col!(
            Ip,
            "ip_is_fragment",
            |f, o| if f.ipv4.is_some() || f.ipv6.is_some() {
                o.bool01(f.is_fragment())
            }
        ),
        // IPv4
        col!(Ipv4, "ip_ihl", |f, o| o
            .opt_int(f.ipv4.as_ref().map(|i| i.ihl))),
        col!(Ipv4, "ip_tos", |f, o| o
            .opt_int(f.ipv4.as_ref().map(|i| i.tos))),
        col!(Ipv4, "ip_len", |f, o| o
            .opt_int(f.ipv4.as_ref().map(|i| i.len))),
        col!(Ipv4, "ip_id", |f, o| o
            .opt_int(f.ipv4.as_ref().map(|i| i.id))),
        col!(Ipv4, "ip_flags", |f, o| o
            .opt_int(f.ipv4.as_ref().map(|i| i.flags))),
        col!(Ipv4, "ip_frag", |f, o| o
            .opt_int(f.ipv4.as_ref().map(|i| i.frag))),
        col!(Ipv4, "ip_ttl", |f, o| o
            .opt_int(f.ipv4.as_ref().map(|i| i.ttl))),
        col!(Ipv4, "ip_proto", |f, o| o
            .opt_int(f.ipv4.as_ref().map(|i| i.proto))),
        col!(Ipv4, "ip_chksum", |f, o| o
            .opt_int(f.ipv4.as_ref().map(|i| i.chksum))),
        col!(Ipv4, "ip_src", |f, o| if let Some(i) = &f.ipv4 {
            o.ipv4(i.src)
        }),
        col!(Ipv4, "ip_dst", |f, o| if let Some(i) = &f.ipv4 {
            o.ipv4(i.dst)
        }),
        col!(Ipv4, "ip_options", |f, o| if let Some(opts) =
            f.ipv4.as_ref().and_then(|i| i.options.as_deref())
        {
            o.text(opts)
        }),
        // IPv6
        col!(Ipv6, "ipv6_tc", |f, o| o
            .opt_int(f.ipv6.as_ref().map(|i| i.tc))),
        col!(Ipv6, "ipv6_fl", |f, o| o
            .opt_int(f.ipv6.as_ref().map(|i| i.fl))),
        col!(Ipv6, "ipv6_plen", |f, o| o
            .opt_int(f.ipv6.as_ref().map(|i| i.plen))),
        col!(Ipv6, "ipv6_nh", |f, o| o
            .opt_int(f.ipv6.as_ref().map(|i| i.upper))),
        col!(Ipv6, "ipv6_hlim", |f, o| o
            .opt_int(f.ipv6.as_ref().map(|i| i.hlim))),
        col!(Ipv6, "ipv6_src", |f, o| if let Some(i) = &f.ipv6 {
            o.ipv6(&i.src)
        }),
        col!(Ipv6, "ipv6_dst", |f, o| if let Some(i) = &f.ipv6 {
            o.ipv6(&i.dst)
        }),
        col!(Ipv6, "ipv6_ext", |f, o| if let Some(i) = &f.ipv6 {
            int_list(o, &i.ext)
        }),
        col!(Ipv6, "ipv6_frag_id", |f, o| o.opt_int(
            f.ipv6.as_ref().and_then(|i| i.frag).map(|fr| fr.id)
        )),
        // TCP
        col!(Tcp, "tcp_sport", |f, o| o
            .opt_int(f.tcp.as_ref().map(|t| t.sport))),
        col!(Tcp, "tcp_dport", |f, o| o
            .opt_int(f.tcp.as_ref().map(|t| t.dport))),
        col!(Tcp, "tcp_seq", |f, o| o
            .opt_int(f.tcp.as_ref().map(|t| t.seq))),
        col!(Tcp, "tcp_ack", |f, o| o
            .opt_int(f.tcp.as_ref().map(|t| t.ack))),
        col!(Tcp, "tcp_dataofs", |f, o| o
            .opt_int(f.tcp.as_ref().map(|t| t.dataofs))),
        col!(Tcp, "tcp_flags", |f, o| o
            .opt_int(f.tcp.as_ref().map(|t| t.flags))),
        col!(Tcp, "tcp_window", |f, o| o
            .opt_int(f.tcp.as_ref().map(|t| t.window))),
        col!(Tcp, "tcp_chksum", |f, o| o
            .opt_int(f.tcp.as_ref().map(|t| t.chksum))),
        col!(Tcp, "tcp_urgptr", |f, o| o
            .opt_int(f.tcp.as_ref().map(|t| t.urgptr))),
        col!(Tcp, "tcp_opt_kinds", |f, o| if let Some(t) = &f.tcp {
            int_list(o, &t.opts.kinds)
        }),
        col!(Tcp, "tcp_opt_mss", |f, o| o
            .opt_int(f.tcp.as_ref().and_then(|t| t.opts.mss))),
        col!(Tcp, "tcp_opt_wscale", |f, o| o
            .opt_int(f.tcp.as_ref().and_then(|t| t.opts.wscale))),
        col!(Tcp, "tcp_opt_sackok", |f, o| o
            .opt_bool01(f.tcp.as_ref().map(|t| t.opts.sackok))),
        col!(Tcp, "tcp_opt_sack", |f, o| if let Some(t) = &f.tcp {
            for (i, (l, r)) in t.opts.sack.iter().enumerate() {
                if i > 0 {
                    o.byte(b' ');
                }
                o.int(*l);
                o.byte(b'-');
                o.int(*r);
            }
        }),
        col!(Tcp, "tcp_opt_ts_val", |f, o| o
            .opt_int(f.tcp.as_ref().and_then(|t| t.opts.ts_val))),
        col!(Tcp, "tcp_opt_ts_ecr", |f, o| o
            .opt_int(f.tcp.as_ref().and_then(|t| t.opts.ts_ecr))),
        // UDP
        col!(Udp, "udp_sport", |f, o| o.opt_int(f.udp.map(|u| u.sport))),
        col!(Udp, "udp_dport", |f, o| o.opt_int(f.udp.map(|u| u.dport))),
        col!(Udp, "udp_len", |f, o| o.opt_int(f.udp.map(|u| u.len))),
        col!(Udp, "udp_chksum", |f, o| o.opt_int(f.udp.map(|u| u.chksum))),
        // ICMP
        col!(Icmp, "icmp_type", |f, o| o
            .opt_int(f.icmp.map(|i| i.icmp_type))),
        col!(Icmp, "icmp_code", |f, o| o.opt_int(f.icmp.map(|i| i.code))),
        col!(Icmp, "icmp_chksum", |f, o| o
            .opt_int(f.icmp.map(|i| i.chksum))),
        col!(Icmp, "icmp_id", |f, o| o.opt_int(f.icmp.and_then(|i| i.id))),
        col!(Icmp, "icmp_seq", |f, o| o
            .opt_int(f.icmp.and_then(|i| i.seq))),
        col!(
            Icmp,
            "icmp_gw",
            |f, o| if let Some(gw) = f.icmp.and_then(|i| i.gw) {
                o.ipv4(gw)
            }
        ),
        // ICMPv6
        col!(Icmpv6, "icmpv6_type", |f, o| o
            .opt_int(f.icmpv6.map(|i| i.icmp_type))),
        col!(Icmpv6, "icmpv6_code", |f, o| o
            .opt_int(f.icmpv6.map(|i| i.code))),
        col!(Icmpv6, "icmpv6_chksum", |f, o| o
            .opt_int(f.icmpv6.map(|i| i.chksum))),
        col!(Icmpv6, "icmpv6_id", |f, o| o
            .opt_int(f.icmpv6.and_then(|i| i.id))),
        col!(Icmpv6, "icmpv6_seq", |f, o| o
            .opt_int(f.icmpv6.and_then(|i| i.seq))),
        // DNS
        col!(Dns, "dns_id", |f, o| o
            .opt_int(f.dns.as_ref().map(|d| d.id))),
        col!(Dns, "dns_qr", |f, o| o
            .opt_bool01(f.dns.as_ref().map(|d| d.qr))),
        col!(Dns, "dns_opcode", |f, o| o
            .opt_int(f.dns.as_ref().map(|d| d.opcode))),
        col!(Dns, "dns_aa", |f, o| o
            .opt_bool01(f.dns.as_ref().map(|d| d.aa))),
        col!(Dns, "dns_tc", |f, o| o
            .opt_bool01(f.dns.as_ref().map(|d| d.tc))),
        col!(Dns, "dns_rd", |f, o| o
            .opt_bool01(f.dns.as_ref().map(|d| d.rd))),
        col!(Dns, "dns_ra", |f, o| o
            .opt_bool01(f.dns.as_ref().map(|d| d.ra))),
        col!(Dns, "dns_z", |f, o| o
            .opt_bool01(f.dns.as_ref().map(|d| d.z))),
        col!(Dns, "dns_ad", |f, o| o
            .opt_bool01(f.dns.as_ref().map(|d| d.ad))),
        col!(Dns, "dns_cd", |f, o| o
            .opt_bool01(f.dns.as_ref().map(|d| d.cd))),
        col!(Dns, "dns_rcode", |f, o| o
            .opt_int(f.dns.as_ref().map(|d| d.rcode))),
        col!(Dns, "dns_qdcount", |f, o| o
            .opt_int(f.dns.as_ref().map(|d| d.qdcount))),
        col!(Dns, "dns_ancount", |f, o| o
            .opt_int(f.dns.as_ref().map(|d| d.ancount))),
        col!(Dns, "dns_nscount", |f, o| o
            .opt_int(f.dns.as_ref().map(|d| d.nscount))),
        col!(Dns, "dns_arcount", |f, o| o
            .opt_int(f.dns.as_ref().map(|d| d.arcount))),
        col!(Dns, "dns_qname", |f, o| if let Some(q) =
            f.dns.as_ref().and_then(|d| d.qname.as_deref())
        {
            o.text(q)
        }),
        col!(Dns, "dns_qtype", |f, o| o
            .opt_int(f.dns.as_ref().and_then(|d| d.qtype))),
        col!(Dns, "dns_qclass", |f, o| o
            .opt_int(f.dns.as_ref().and_then(|d| d.qclass))),
        // payload and trailer
        col!(Payload, "payload_len", |f, o| o
            .opt_int(f.payload.as_ref().map(|p| p.len))),
        col!(Payload, "payload_hex", |f, o| if let Some(h) =
            f.payload.as_ref().and_then(|p| p.hex.as_deref())
        {
            o.text(h)
        }),
        col!(Payload, "payload_capped", |f, o| o
            .opt_bool01(f.payload.as_ref().map(|p| p.capped))),
        col!(Padding, "padding_len", |f, o| o
            .opt_int(f.padding.as_ref().map(|p| p.len))),
        col!(
            Errors,
            "decode_errors",
            |f, o| for (i, e) in f.errors.iter().enumerate() {
                if i > 0 {
                    o.byte(b';');
                }
                o.safe(e.as_str().as_bytes());
            }
        ),
        // ---- v2: appended, so v1 stays a prefix ----
        // 802.3 length and 802.2 LLC / SNAP
        col!(Eth, "eth_len", |f, o| o.opt_int(f.ieee8023_len())),
        col!(Llc, "llc_dsap", |f, o| o.opt_int(f.llc.map(|l| l.dsap))),
        col!(Llc, "llc_ssap", |f, o| o.opt_int(f.llc.map(|l| l.ssap))),
        col!(Llc, "llc_control", |f, o| o
            .opt_int(f.llc.map(|l| l.control))),
        col!(Llc, "llc_oui", |f, o| o.opt_int(f.llc.and_then(|l| l.oui))),
        col!(Llc, "llc_pid", |f, o| o.opt_int(f.llc.and_then(|l| l.pid))),
        // MPLS, like VLAN: outermost entry, and the innermost label when there are several
        col!(Mpls, "mpls_label", |f, o| o
            .opt_int(f.mpls.first().map(|m| m.label))),
        col!(Mpls, "mpls_tc", |f, o| o
            .opt_int(f.mpls.first().map(|m| m.tc))),
        col!(Mpls, "mpls_ttl", |f, o| o
            .opt_int(f.mpls.first().map(|m| m.ttl))),
        col!(Mpls, "mpls_inner_label", |f, o| if f.mpls.len() > 1 {
            o.opt_int(f.mpls.last().map(|m| m.label))
        }),
        col!(Mpls, "mpls_depth", |f, o| o.int(f.mpls.len())),
        // ICMP bytes 4..8 of the types without id/seq or gateway
        col!(Icmp, "icmp_ptr", |f, o| o
            .opt_int(f.icmp.and_then(|i| i.ptr))),
        col!(Icmp, "icmp_unused", |f, o| o
            .opt_int(f.icmp.and_then(|i| i.unused))),
    ];
