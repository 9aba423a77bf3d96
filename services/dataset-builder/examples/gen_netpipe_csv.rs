//! Writes a netpipe-like CSV of about the given size, for bench/dataset_builder.sh.
//! Usage: gen_netpipe_csv OUT.csv SIZE_MB [SEED]

use std::io::BufWriter;

use dataset_builder::synth::{SynthSpec, write_csv};

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(out), Some(mb)) = (args.get(1), args.get(2).and_then(|s| s.parse::<u64>().ok()))
    else {
        eprintln!("usage: gen_netpipe_csv OUT.csv SIZE_MB [SEED]");
        std::process::exit(2);
    };
    let seed = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1);
    let file = std::fs::File::create(out)?;
    let stats = write_csv(
        BufWriter::with_capacity(1 << 20, file),
        &SynthSpec {
            seed,
            rows: u64::MAX,
            max_bytes: mb * 1_000_000,
            duplicate_every: 10,
            ..SynthSpec::default()
        },
    )?;
    println!(
        "{out}: {} rows, {} bytes, {} attacker rows, {} duplicates",
        stats.rows, stats.bytes, stats.attacker_rows, stats.duplicates
    );
    Ok(())
}
