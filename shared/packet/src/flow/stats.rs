//! Running statistics with NFStream's exact update order (Welford), so means and standard
//! deviations agree with it to the last bits.

/// Min, max, mean and the sum of squared deviations of a stream of values.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Running {
    n: u64,
    min: f64,
    max: f64,
    mean: f64,
    m2: f64,
}

impl Running {
    pub fn push(&mut self, x: f64) {
        self.n += 1;
        if self.n == 1 {
            self.min = x;
            self.max = x;
            self.mean = x;
            return;
        }
        if x > self.max {
            self.max = x;
        }
        if x < self.min {
            self.min = x;
        }
        let old_mean = self.mean;
        self.mean += (x - old_mean) / self.n as f64;
        self.m2 += (x - old_mean) * (x - self.mean);
    }

    pub fn count(&self) -> u64 {
        self.n
    }
    pub fn min(&self) -> f64 {
        self.min
    }
    pub fn max(&self) -> f64 {
        self.max
    }
    pub fn mean(&self) -> f64 {
        self.mean
    }
    /// Sample standard deviation (n-1), 0 with fewer than two values.
    pub fn stddev(&self) -> f64 {
        if self.n > 1 {
            (self.m2 / (self.n - 1) as f64).sqrt()
        } else {
            0.0
        }
    }
    pub fn sum(&self) -> f64 {
        self.mean * self.n as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_textbook_sample_statistics() {
        let mut r = Running::default();
        for x in [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0] {
            r.push(x);
        }
        assert_eq!(r.count(), 8);
        assert_eq!((r.min(), r.max(), r.mean()), (2.0, 9.0, 5.0));
        assert!((r.stddev() - (32.0f64 / 7.0).sqrt()).abs() < 1e-12);
        assert_eq!(Running::default().stddev(), 0.0);
    }
}
