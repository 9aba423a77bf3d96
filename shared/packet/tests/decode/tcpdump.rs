//! Second oracle: tcpdump's expected outputs (`tcpdump-expected/*.out`). Cheap to compare and
//! the only oracle that lists every TCP option in wire order, so that is what is checked.

use crate::decode_support;

use std::collections::HashMap;

use netpipe_packet::decode::DecodeOptions;
use netpipe_packet::frame::{Frame, Tcp};

/// Our options in tcpdump's notation. SACK edges are relative to the data sender's ISN,
/// as tcpdump prints them by default.
fn render(tcp: &Tcp, sack_base: u32) -> String {
    let opts = &tcp.opts;
    let mut parts = Vec::new();
    for kind in &opts.kinds {
        parts.push(match kind {
            0 => "eol".to_string(),
            1 => "nop".to_string(),
            2 => format!("mss {}", opts.mss.unwrap_or_default()),
            3 => format!("wscale {}", opts.wscale.unwrap_or_default()),
            4 => "sackOK".to_string(),
            5 => {
                let blocks: String = opts
                    .sack
                    .iter()
                    .map(|(l, r)| {
                        format!(
                            "{{{}:{}}}",
                            l.wrapping_sub(sack_base),
                            r.wrapping_sub(sack_base)
                        )
                    })
                    .collect();
                format!("sack {} {blocks}", opts.sack.len())
            }
            8 => format!(
                "TS val {} ecr {}",
                opts.ts_val.unwrap_or_default(),
                opts.ts_ecr.unwrap_or_default()
            ),
            other => format!("unknown-{other}"),
        });
    }
    parts.join(",")
}

/// Packet number -> the text inside `options [...]`, for lines that have one.
fn expected_options(out: &str) -> HashMap<usize, String> {
    let mut map = HashMap::new();
    for line in out.lines() {
        let Some(number) = line.split_whitespace().next().and_then(|n| n.parse().ok()) else {
            continue;
        };
        if let Some(start) = line.find("options [") {
            let rest = &line[start + "options [".len()..];
            if let Some(end) = rest.find(']') {
                map.insert(number, rest[..end].to_string());
            }
        }
    }
    map
}

fn endpoint(frame: &Frame, src: bool) -> String {
    let ip = match (&frame.ipv4, &frame.ipv6) {
        (Some(v4), _) => {
            if src {
                v4.src.to_string()
            } else {
                v4.dst.to_string()
            }
        }
        (_, Some(v6)) => {
            if src {
                v6.src.to_string()
            } else {
                v6.dst.to_string()
            }
        }
        _ => String::new(),
    };
    let port = frame
        .tcp
        .as_ref()
        .map(|t| if src { t.sport } else { t.dport });
    format!("{ip}.{}", port.unwrap_or_default())
}

#[test]
fn tcp_options_match_tcpdump() {
    let Some(dir) = decode_support::pcaps_dir("tcp_options_match_tcpdump") else {
        return;
    };
    let mut compared = 0;
    for (pcap, out) in [
        ("tcpdump-ssh.pcap", "ssh.out"),
        ("tcpdump-pptp.pcap", "pptp.out"),
    ] {
        let text = std::fs::read_to_string(dir.join("tcpdump-expected").join(out)).expect("out");
        let expected = expected_options(&text);
        let (frames, err) =
            decode_support::decode_file(&dir.join(pcap), &DecodeOptions { payload_bytes: 0 });
        assert!(err.is_none(), "{pcap}: {err:?}");
        // Initial sequence number of each sender, from its SYN.
        let mut isn = HashMap::new();
        for frame in &frames {
            if let Some(tcp) = frame.tcp.as_ref().filter(|t| t.flags & 0x02 != 0) {
                isn.insert(endpoint(frame, true), tcp.seq);
            }
        }
        for (i, frame) in frames.iter().enumerate() {
            let number = i + 1;
            let ours = frame.tcp.as_ref().filter(|t| !t.opts.kinds.is_empty());
            match (ours, expected.get(&number)) {
                (None, None) => {}
                (Some(tcp), Some(want)) => {
                    let base = isn
                        .get(&endpoint(frame, false))
                        .copied()
                        .unwrap_or_default();
                    assert_eq!(&render(tcp, base), want, "{pcap} #{number}");
                    compared += 1;
                }
                (ours, want) => panic!("{pcap} #{number}: ours {ours:?}, tcpdump {want:?}"),
            }
        }
    }
    assert!(compared >= 28, "compared {compared} option lists");
}
