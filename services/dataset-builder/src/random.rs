//! Seeded, counter-based random numbers. SplitMix64 is written out here (not taken from a
//! crate) so that a seed gives the same labels and split in every future version.

/// Domain separators, so label draws and split draws are independent for one seed.
pub const DOMAIN_LABEL: u64 = 0x6c61_6265_6c73_0001;
pub const DOMAIN_SPLIT: u64 = 0x7370_6c69_7473_0002;

/// One SplitMix64 step: a bijective 64-bit mixer.
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A uniform 64-bit value for (seed, domain, a, b).
pub fn draw(seed: u64, domain: u64, a: u64, b: u64) -> u64 {
    splitmix64(splitmix64(splitmix64(splitmix64(seed) ^ domain) ^ a) ^ b)
}

/// Maps a uniform 64-bit value onto 0..n (multiply-shift; bias below n / 2^64).
pub fn below(value: u64, n: u64) -> u64 {
    ((u128::from(value) * u128::from(n)) >> 64) as u64
}

/// The original's `random.randint(0, 100)` for one input row, reproducible per seed.
pub fn randint_0_100(seed: u64, row: u64) -> u64 {
    below(draw(seed, DOMAIN_LABEL, row, 0), 101)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn randint_covers_0_to_100_evenly() {
        let mut hist = [0u64; 101];
        for row in 0..101_000 {
            let v = randint_0_100(7, row) as usize;
            hist[v] += 1;
        }
        assert!(hist.iter().all(|n| (800..1200).contains(n)), "{hist:?}");
        let a: Vec<u64> = (0..20).map(|r| randint_0_100(7, r)).collect();
        let b: Vec<u64> = (0..20).map(|r| randint_0_100(8, r)).collect();
        assert_ne!(a, b);
    }

    #[test]
    fn splitmix_known_value() {
        // First output of the reference SplitMix64 seeded with 0.
        assert_eq!(splitmix64(0), 0xE220_A839_7B1D_CDAF);
    }
}
