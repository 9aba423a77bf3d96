//! Seeds for the decoder fuzz target: every packet of the corpus as `[link type BE u16] ++
//! bytes`, one file per distinct packet, in `fuzz/corpus/decode/` (git-ignored).
//!
//! `cargo test -p netpipe-packet --test decode fuzz_seeds -- --ignored` (or set `FUZZ_SEEDS_DIR`).

use crate::decode_support;

use std::collections::HashSet;
use std::path::PathBuf;

/// FNV-1a: a stable file name per seed, so reruns do not duplicate files.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[test]
#[ignore = "writes fuzz seeds; run on demand"]
fn write_fuzz_seeds() {
    let Some(dir) = decode_support::pcaps_dir("write_fuzz_seeds") else {
        return;
    };
    let out = std::env::var_os("FUZZ_SEEDS_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/decode"),
        PathBuf::from,
    );
    std::fs::create_dir_all(&out).expect("create seed dir");
    let mut seen = HashSet::new();
    for sub in ["", "malformed"] {
        for path in decode_support::capture_files(&dir.join(sub)) {
            // The 100k file is a concatenation of the others.
            if path.file_name().is_some_and(|n| n == "large-100k.pcap") {
                continue;
            }
            for (link, data, _) in decode_support::raw_packets(&path) {
                let mut seed = link.to_be_bytes().to_vec();
                seed.extend_from_slice(&data);
                let hash = fnv1a(&seed);
                if seen.insert(hash) {
                    std::fs::write(out.join(format!("{hash:016x}")), &seed).expect("write seed");
                }
            }
        }
    }
    println!("{} seeds in {}", seen.len(), out.display());
    assert!(seen.len() > 500);
}
