//! The connection table: every open connection in accept order, with whether it is running a
//! request, so that at the limit the oldest idle one can be closed; and giving freed memory back.

use atomic_waker::AtomicWaker;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// What the server asks of a connection's task; it only ever grows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub(crate) enum Signal {
    Run = 0,
    /// The server is shutting down: finish the request in flight, within the grace.
    Stop = 1,
    /// Close now (evicted at the connection limit).
    Kill = 2,
}

impl Signal {
    fn of(v: u8) -> Signal {
        match v {
            0 => Signal::Run,
            1 => Signal::Stop,
            _ => Signal::Kill,
        }
    }
}

/// What the table and a connection's task share about it. Holds no resources: the table may
/// keep and drop these freely (dropping one never re-enters the table's lock).
pub(crate) struct Slot {
    /// Requests running (service called, response body not yet finished).
    pub in_flight: AtomicUsize,
    /// When it last became idle (accepted, or its last response finished).
    idle_since: Mutex<Instant>,
    /// What the server asks of the task ([`Signal`]).
    signal: AtomicU8,
    /// The task waiting for `signal`. Lock-free, because the task looks at it at every wake-up
    /// of its connection (a `Notify` takes a lock each time).
    waker: AtomicWaker,
    evicted: AtomicBool,
}

impl Slot {
    pub fn idle_since(&self) -> Instant {
        *self.idle_since.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_idle_now(&self) {
        *self.idle_since.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    /// Asks the task for `to` (or keeps what it was asked, if more) and wakes it.
    pub fn raise(&self, to: Signal) {
        self.signal.fetch_max(to as u8, Ordering::AcqRel);
        self.waker.wake();
    }

    /// Completes with the signal once it is at least `at_least`.
    pub fn signalled(&self, at_least: Signal) -> impl Future<Output = Signal> + '_ {
        std::future::poll_fn(move |cx| {
            let now = Signal::of(self.signal.load(Ordering::Acquire));
            if now >= at_least {
                return Poll::Ready(now);
            }
            self.waker.register(cx.waker());
            // Raised between the load and the registration: seen here.
            let now = Signal::of(self.signal.load(Ordering::Acquire));
            if now >= at_least {
                Poll::Ready(now)
            } else {
                Poll::Pending
            }
        })
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
            signal: AtomicU8::new(Signal::Run as u8),
            waker: AtomicWaker::new(),
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
                slot.raise(Signal::Kill);
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
            slot.raise(Signal::Kill);
        }
    }

    /// Asks every connection to finish what it is doing and close (the server is stopping).
    pub fn stop_all(&self) {
        let map = self.inner.map.lock().unwrap_or_else(|e| e.into_inner());
        for slot in map.values() {
            slot.raise(Signal::Stop);
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
            // Inline (a millisecond at most on this heap): a blocking thread would linger and
            // count as a thread.
            common::allocator::release_free_memory();
        });
    }
}
