//! How the daemons keep glibc's allocator from sitting on freed memory: a round's peak between
//! rounds, a burst of connections after it has gone.
//!
//! A round's checks run on short-lived threads that read files through buffers of a few hundred
//! KiB (the loader binary, string scans of libraries and jar entries). glibc serves such buffers
//! with mmap at first, but once one is freed it raises its mmap threshold to that size, so later
//! buffers come from the per-thread arenas, where what is freed stays resident and small live
//! allocations made in between keep the arena fragmented. Measured at rest on this agent: an
//! arena of 640 KiB holding 100 KiB of live data. So the daemon fixes the threshold at glibc's
//! default (fixing it turns the raising off) and, once a round is published, gives every
//! arena's whole free pages back. musl's allocator (the static release builds) unmaps large
//! buffers and returns freed memory itself: there is nothing to do there.

/// glibc's default mmap threshold: allocations from here up get their own mapping.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 128 * 1024;

/// Fixes glibc's mmap threshold, so buffers above it are always mapped on their own and
/// unmapped when freed. Called once, when the daemon starts.
pub fn configure() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes the allocator's own parameters, under its own lock.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
}

/// Gives the free pages of every arena back to the kernel; on this agent's heaps (about a MiB)
/// it takes microseconds. Called after each round is published, and by the server after a
/// burst of closed connections.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes the allocator's own locks and only releases free memory.
    unsafe {
        libc::malloc_trim(0);
    }
}
