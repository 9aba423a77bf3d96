//! The process's own CPU time and peak memory, logged by each service as it stops: what
//! `/usr/bin/time -v` would report, without a wrapper process around the service (a wrapper
//! adds its own start and exit to every measured run).

/// CPU seconds and peak resident memory of this process, all threads included.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResourceUsage {
    pub cpu_user_s: f64,
    pub cpu_system_s: f64,
    pub max_rss_mb: f64,
}

/// `getrusage(RUSAGE_SELF)`; `None` if the kernel refuses.
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
        // Linux reports kilobytes.
        max_rss_mb: usage.ru_maxrss as f64 / 1024.0,
    })
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
        let before = resource_usage().expect("getrusage");
        assert!(before.max_rss_mb > 0.0);
        assert!(before.cpu_user_s >= 0.0 && before.cpu_system_s >= 0.0);
        // Touch 64 MiB more than this test process has used so far.
        let block = vec![1u8; 64 << 20];
        assert_eq!(
            block.iter().step_by(4096).map(|b| *b as u64).sum::<u64>(),
            16_384
        );
        let after = resource_usage().expect("getrusage");
        assert!(
            after.max_rss_mb >= before.max_rss_mb + 48.0,
            "{before:?} -> {after:?}"
        );
        assert!(after.cpu_user_s + after.cpu_system_s > before.cpu_user_s + before.cpu_system_s);
    }
}
