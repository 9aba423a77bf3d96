//! The process's own CPU time and peak memory, logged by each service as it stops: what
//! `/usr/bin/time -v` would report, without a wrapper process around the service (a wrapper
//! adds its own start and exit to every measured run).

/// CPU seconds (all threads) and peak resident memory of this process.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResourceUsage {
    pub cpu_user_s: f64,
    pub cpu_system_s: f64,
    pub max_rss_mb: f64,
}

/// CPU time from `getrusage(RUSAGE_SELF)`; peak memory from `VmHWM` in /proc/self/status,
/// because `ru_maxrss` keeps the parent's peak across exec. `None` if either is unavailable.
#[allow(unsafe_code)] // libc::getrusage into a zeroed struct
pub fn resource_usage() -> Option<ResourceUsage> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes one `rusage` through the pointer, which is valid for it.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: zero-initialised, and filled by the successful call above.
    let usage = unsafe { usage.assume_init() };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Some(ResourceUsage {
        cpu_user_s: seconds(usage.ru_utime),
        cpu_system_s: seconds(usage.ru_stime),
        max_rss_mb: peak_rss_kb()? as f64 / 1024.0,
    })
}

fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Logs [`resource_usage`] as one "resource usage" event (bench/end_to_end.sh reads it).
pub fn log_resource_usage() {
    if let Some(usage) = resource_usage() {
        tracing::info!(
            cpu_user_s = usage.cpu_user_s,
            cpu_system_s = usage.cpu_system_s,
            max_rss_mb = usage.max_rss_mb,
            "resource usage"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_memory_grows_with_touched_pages() {
        let before = resource_usage().expect("getrusage and /proc/self/status");
        assert!(before.max_rss_mb > 0.0);
        // More than the peak so far (other tests share this process): a new peak.
        let bytes = (before.max_rss_mb as usize + 64) << 20;
        let mut block = vec![0u8; bytes];
        for page in block.chunks_mut(4096) {
            page[0] = 1;
        }
        let touched = std::hint::black_box(&block)
            .iter()
            .step_by(4096)
            .filter(|b| **b == 1);
        assert_eq!(touched.count(), bytes / 4096);
        let after = resource_usage().expect("getrusage and /proc/self/status");
        assert!(
            after.max_rss_mb >= before.max_rss_mb + 48.0,
            "{before:?} -> {after:?}"
        );
        assert!(after.cpu_user_s + after.cpu_system_s > before.cpu_user_s + before.cpu_system_s);
    }
}
