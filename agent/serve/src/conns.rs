//! The connection table: every open connection in accept order, with whether it is running a
//! request, so that at the limit the oldest idle one can be closed; and giving freed memory back.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// What the table and a connection's task share about it. Holds no resources: the table may
/// keep and drop these freely (dropping one never re-enters the table's lock).
pub(crate) struct Slot {
    /// Requests running (service called, response body not yet finished).
    pub in_flight: AtomicUsize,
    /// When it last became idle (accepted, or its last response finished).
    idle_since: Mutex<Instant>,
    /// Wakes the task when `in_flight` changes, so it re-arms its head deadline.
    pub activity: Notify,
    /// Tells the task to drop the connection now.
    pub kill: Notify,
    evicted: AtomicBool,
}

impl Slot {
    pub fn idle_since(&self) -> Instant {
        *self.idle_since.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_idle_now(&self) {
        *self.idle_since.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }
}

/// A connection's registration: dropped (by its task, with the last clone) when it closes,
/// which takes it out of the table.
pub(crate) struct ConnState {
    id: u64,
    slot: Arc<Slot>,
    table: Arc<Inner>,
}

impl std::ops::Deref for ConnState {
    type Target = Slot;
    fn deref(&self) -> &Slot {
        &self.slot
    }
}

impl Drop for ConnState {
    fn drop(&mut self) {
        self.table
            .map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
        self.table.closed.notify_waiters();
        release_freed_memory();
    }
}

struct Inner {
    /// Open connections by id (ids grow with accept order, so the first is the oldest).
    map: Mutex<BTreeMap<u64, Arc<Slot>>>,
    closed: Notify,
}

/// All open connections of one server.
pub(crate) struct Table {
    inner: Arc<Inner>,
    next_id: std::sync::atomic::AtomicU64,
}

impl Table {
    pub fn new() -> Table {
        Table {
            inner: Arc::new(Inner {
                map: Mutex::new(BTreeMap::new()),
                closed: Notify::new(),
            }),
            next_id: Default::default(),
        }
    }

    /// Connections open now (evicted ones count until their task has dropped them).
    pub fn len(&self) -> usize {
        self.inner
            .map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// A new connection, idle since now.
    pub fn register(&self) -> Arc<ConnState> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let slot = Arc::new(Slot {
            in_flight: AtomicUsize::new(0),
            idle_since: Mutex::new(Instant::now()),
            activity: Notify::new(),
            kill: Notify::new(),
            evicted: AtomicBool::new(false),
        });
        self.inner
            .map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, slot.clone());
        Arc::new(ConnState {
            id,
            slot,
            table: self.inner.clone(),
        })
    }

    /// Tells the oldest connection without a request in flight to close; false when every
    /// connection is busy.
    pub fn evict_oldest_idle(&self) -> bool {
        let map = self.inner.map.lock().unwrap_or_else(|e| e.into_inner());
        for slot in map.values() {
            if slot.in_flight.load(Ordering::Acquire) == 0
                && !slot.evicted.swap(true, Ordering::AcqRel)
            {
                slot.kill.notify_one();
                return true;
            }
        }
        false
    }

    /// Tells the oldest connection, busy or not, to close.
    pub fn evict_oldest(&self) {
        let map = self.inner.map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = map
            .values()
            .find(|s| !s.evicted.swap(true, Ordering::AcqRel))
        {
            slot.kill.notify_one();
        }
    }

    /// Waits until fewer than `n` connections are open, at most `within`.
    pub async fn wait_below(&self, n: usize, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let closed = self.inner.closed.notified();
            tokio::pin!(closed);
            closed.as_mut().enable();
            if self.len() < n {
                return;
            }
            if tokio::time::timeout_at(deadline, closed).await.is_err() {
                return;
            }
        }
    }
}

/// Hands memory that closed connections freed back to the kernel: glibc keeps freed heap pages,
/// so RSS would stay at its peak after a burst of connections. Coalesced: one `malloc_trim` a
/// second after the first close of a burst.
pub(crate) fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static SCHEDULED: AtomicBool = AtomicBool::new(false);
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if SCHEDULED.swap(true, Ordering::AcqRel) {
            return;
        }
        rt.spawn(async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            SCHEDULED.store(false, Ordering::Release);
            // SAFETY: malloc_trim only walks the allocator's own free lists. Called inline (a
            // millisecond on this heap): a blocking thread would linger and count as a thread.
            unsafe { libc::malloc_trim(0) };
        });
    }
}
