//! The Frame batch wire format, encoded and decoded without serde's generic machinery.
//!
//! Frame JSON is the hot path of the whole pipeline: the agent encodes every packet and the
//! processor decodes it again, and with serde_json those two steps took about half of each
//! service's CPU (docs/benchmarks.md, "Frame codec"). This module writes exactly the bytes
//! `serde_json::to_vec` writes for `&[Frame]` (the derive in `frame.rs` stays the contract, and
//! tests compare the two byte for byte), and reads the common shape of such a body directly.
//!
//! The reader is a fast path, not a second parser to trust: it gives up (`None`) on anything it
//! does not expect (an escape sequence, `null`, an unknown or repeated key, a number with a
//! fraction), and the caller then decodes the body with serde_json, which yields either the
//! same frames or the error that dead-letters the message. Tests check that whenever the fast
//! path accepts a body, serde_json accepts it too and yields the same frames.

/// Every struct of a frame with its fields in declaration order (the order serde writes them),
/// each with its JSON key and serde's skip rule: `field` always written, `some` skipped when
/// `None`, `unless_empty` skipped when empty (`Vec`s, `TcpOptions`), `set` skipped when false.
/// The reader and the writer are both generated from this one list (`$callback` is
/// `read_struct` or `write_struct`); `frame.rs`'s serde attributes stay the contract, and tests
/// compare both directions with serde_json.
macro_rules! frame_structs {
    ($callback:ident) => {
        $callback!(Frame {
            v: field "v",
            agent: field "agent",
            boot: field "boot",
            seq: field "seq",
            ts_ns: field "ts_ns",
            wire_len: field "wire_len",
            cap_len: field "cap_len",
            link: field "link",
            eth: some "eth",
            sll: some "sll",
            vlan: unless_empty "vlan",
            mpls: unless_empty "mpls",
            llc: some "llc",
            arp: some "arp",
            ipv4: some "ipv4",
            ipv6: some "ipv6",
            icmp: some "icmp",
            icmpv6: some "icmpv6",
            tcp: some "tcp",
            udp: some "udp",
            dns: some "dns",
            payload: some "payload",
            padding: some "padding",
            errors: unless_empty "errors",
        });
        $callback!(Ethernet {
            src: field "src",
            dst: field "dst",
            ether_type: field "type",
        });
        $callback!(LinuxSll {
            version: field "version",
            pkttype: field "pkttype",
            hatype: field "hatype",
            addr: field "addr",
            protocol: field "protocol",
            ifindex: some "ifindex",
        });
        $callback!(VlanTag {
            tpid: field "tpid",
            id: field "id",
            pcp: field "pcp",
            dei: field "dei",
            ether_type: field "type",
        });
        $callback!(MplsLabel {
            label: field "label",
            tc: field "tc",
            bottom: field "bottom",
            ttl: field "ttl",
        });
        $callback!(Llc {
            dsap: field "dsap",
            ssap: field "ssap",
            control: field "control",
            oui: some "oui",
            pid: some "pid",
        });
        $callback!(Arp {
            hwtype: field "hwtype",
            ptype: field "ptype",
            hwlen: field "hwlen",
            plen: field "plen",
            op: field "op",
            hwsrc: field "hwsrc",
            psrc: field "psrc",
            hwdst: field "hwdst",
            pdst: field "pdst",
        });
        $callback!(Ipv4 {
            ihl: field "ihl",
            tos: field "tos",
            len: field "len",
            id: field "id",
            flags: field "flags",
            frag: field "frag",
            ttl: field "ttl",
            proto: field "proto",
            chksum: field "chksum",
            src: field "src",
            dst: field "dst",
            options: some "options",
        });
        $callback!(Ipv6 {
            tc: field "tc",
            fl: field "fl",
            plen: field "plen",
            nh: field "nh",
            hlim: field "hlim",
            src: field "src",
            dst: field "dst",
            ext: unless_empty "ext",
            upper: field "upper",
            frag: some "frag",
        });
        $callback!(Ipv6Fragment {
            offset: field "offset",
            more: field "more",
            id: field "id",
        });
        $callback!(Icmp {
            icmp_type: field "type",
            code: field "code",
            chksum: field "chksum",
            id: some "id",
            seq: some "seq",
            gw: some "gw",
            ptr: some "ptr",
            unused: some "unused",
        });
        $callback!(Icmpv6 {
            icmp_type: field "type",
            code: field "code",
            chksum: field "chksum",
            id: some "id",
            seq: some "seq",
        });
        $callback!(Tcp {
            sport: field "sport",
            dport: field "dport",
            seq: field "seq",
            ack: field "ack",
            dataofs: field "dataofs",
            flags: field "flags",
            window: field "window",
            chksum: field "chksum",
            urgptr: field "urgptr",
            opts: unless_empty "opts",
        });
        $callback!(TcpOptions {
            kinds: unless_empty "kinds",
            mss: some "mss",
            wscale: some "wscale",
            sackok: set "sackok",
            sack: unless_empty "sack",
            ts_val: some "ts_val",
            ts_ecr: some "ts_ecr",
        });
        $callback!(Udp {
            sport: field "sport",
            dport: field "dport",
            len: field "len",
            chksum: field "chksum",
        });
        $callback!(Dns {
            id: field "id",
            qr: field "qr",
            opcode: field "opcode",
            aa: field "aa",
            tc: field "tc",
            rd: field "rd",
            ra: field "ra",
            z: field "z",
            ad: field "ad",
            cd: field "cd",
            rcode: field "rcode",
            qdcount: field "qdcount",
            ancount: field "ancount",
            nscount: field "nscount",
            arcount: field "arcount",
            qname: some "qname",
            qtype: some "qtype",
            qclass: some "qclass",
        });
        $callback!(Payload {
            len: field "len",
            hex: some "hex",
            capped: set "capped",
        });
    };
}

mod read;
mod write;

pub use read::read_frames;
pub use write::write_frames;
