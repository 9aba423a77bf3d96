//! glibc malloc settings for the packet path.
//!
//! Frame batches are 100-300 KB each (a message body, its decoded frames, the agent's encoded
//! body), above glibc's default mmap threshold (128 KiB) and near its trim threshold: each batch
//! was mapped or carved from the top of the heap, faulted in page by page and given back to the
//! kernel again. With both thresholds raised the same memory is reused from batch to batch:
//! page faults per 100,000 packets fell from 11,000-16,000 to 5,000-7,000 in the processor and
//! from 5,000-11,000 to ~2,200 in the capture-agent, for 10-15% less CPU and a few MB more RSS
//! (docs/benchmarks.md).

/// Blocks up to this size come from the heap, not from their own mapping.
const MMAP_THRESHOLD: i32 = 4 << 20;
/// Free memory at the top of the heap kept for reuse before it is returned to the kernel.
const TRIM_THRESHOLD: i32 = 16 << 20;

/// Raises glibc's mmap and trim thresholds, unless the operator tuned malloc through
/// `GLIBC_TUNABLES` (theirs wins). Does nothing on other C libraries.
#[allow(unsafe_code)] // libc::mallopt
pub fn tune_allocator() {
    if std::env::var_os("GLIBC_TUNABLES").is_some() {
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters (under the allocator's own lock); it is
    // called with valid parameter codes and values and touches no memory of ours.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
    }
}
