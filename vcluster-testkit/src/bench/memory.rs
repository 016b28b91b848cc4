//! Memory accounting: a counting global allocator (install it with
//! `#[global_allocator]` in a bench binary) and the resident set size.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

/// The system allocator, counting allocations and bytes. The counters
/// are relaxed atomics: a few nanoseconds per allocation.
pub struct CountingAlloc {
    allocations: AtomicU64,
    allocated: AtomicU64,
    freed: AtomicU64,
}

/// The counters at one moment.
#[derive(Clone, Copy, Debug, Default)]
pub struct AllocSnapshot {
    /// Allocations made (a `realloc` counts as one).
    pub allocations: u64,
    /// Bytes ever allocated.
    pub allocated_bytes: u64,
    /// Bytes ever freed.
    pub freed_bytes: u64,
}

impl AllocSnapshot {
    /// Bytes allocated and not yet freed.
    pub fn live_bytes(&self) -> i64 {
        self.allocated_bytes as i64 - self.freed_bytes as i64
    }

    /// Allocations made since `earlier`.
    pub fn allocations_since(&self, earlier: &AllocSnapshot) -> u64 {
        self.allocations - earlier.allocations
    }

    /// Bytes allocated since `earlier` (whether freed again or not).
    pub fn bytes_since(&self, earlier: &AllocSnapshot) -> u64 {
        self.allocated_bytes - earlier.allocated_bytes
    }
}

impl CountingAlloc {
    /// A counter with everything at zero.
    pub const fn new() -> Self {
        Self {
            allocations: AtomicU64::new(0),
            allocated: AtomicU64::new(0),
            freed: AtomicU64::new(0),
        }
    }

    /// The counters now.
    pub fn snapshot(&self) -> AllocSnapshot {
        AllocSnapshot {
            allocations: self.allocations.load(Ordering::Relaxed),
            allocated_bytes: self.allocated.load(Ordering::Relaxed),
            freed_bytes: self.freed.load(Ordering::Relaxed),
        }
    }

    fn count_alloc(&self, size: usize) {
        self.allocations.fetch_add(1, Ordering::Relaxed);
        self.allocated.fetch_add(size as u64, Ordering::Relaxed);
    }
}

impl Default for CountingAlloc {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator; the
// wrapper only counts.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.count_alloc(layout.size());
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        self.count_alloc(layout.size());
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        self.freed
            .fetch_add(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        self.count_alloc(new_size);
        self.freed
            .fetch_add(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// This process's resident set size in bytes (`VmRSS`: the second field
/// of `/proc/self/statm` times the page size); `None` off Linux.
pub fn rss_bytes() -> Option<u64> {
    rss_from("/proc/self/status")
}

/// Another process's resident set size in bytes.
pub fn rss_bytes_of(pid: u32) -> Option<u64> {
    rss_from(&format!("/proc/{pid}/status"))
}

fn rss_from(path: &str) -> Option<u64> {
    let status = std::fs::read_to_string(path).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line
        .trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// CPU time (user + system) this process has used so far.
pub fn cpu_time() -> Option<std::time::Duration> {
    cpu_from("/proc/self/stat")
}

/// CPU time (user + system) process `pid` has used so far.
pub fn cpu_time_of(pid: u32) -> Option<std::time::Duration> {
    cpu_from(&format!("/proc/{pid}/stat"))
}

fn cpu_from(path: &str) -> Option<std::time::Duration> {
    // Linux reports these in clock ticks of USER_HZ, which is 100.
    const TICKS_PER_SECOND: u64 = 100;
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the command name (which may hold spaces), from field 3.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(std::time::Duration::from_millis(
        (utime + stime) * 1000 / TICKS_PER_SECOND,
    ))
}
