//! The in-flight body budget (`max_inflight_body_bytes`): the bytes of request bodies being read
//! and decoded at once, over every connection. A push reserves its `Content-Length` (or
//! `max_report_bytes` when it sends none) before reading, and as much again before inflating
//! gzip; a reservation that does not fit is refused with 503 and `Retry-After` at once, so
//! bodies held open by slow or hostile clients cannot grow memory past the budget.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes of bodies in flight, against a fixed budget.
pub struct BodyBudget {
    limit: u64,
    used: Arc<AtomicU64>,
}

/// A reservation: given back when dropped.
#[derive(Debug)]
pub struct Reserved {
    bytes: u64,
    used: Arc<AtomicU64>,
}

impl Drop for Reserved {
    fn drop(&mut self) {
        self.used.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

impl BodyBudget {
    pub fn new(limit: u64) -> BodyBudget {
        BodyBudget {
            limit,
            used: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The budget in bytes.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Bytes reserved now.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Acquire)
    }

    /// Reserves `bytes`, or `None` when they do not fit in what is left.
    pub fn reserve(&self, bytes: u64) -> Option<Reserved> {
        let mut cur = self.used.load(Ordering::Acquire);
        loop {
            let next = cur.checked_add(bytes).filter(|n| *n <= self.limit)?;
            match self
                .used
                .compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    return Some(Reserved {
                        bytes,
                        used: self.used.clone(),
                    });
                }
                Err(now) => cur = now,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_fit_the_budget_and_are_given_back() {
        let b = BodyBudget::new(10);
        let a = b.reserve(6).unwrap();
        assert!(b.reserve(5).is_none());
        let c = b.reserve(4).unwrap();
        assert_eq!(b.used(), 10);
        drop(a);
        assert_eq!(b.used(), 4);
        assert!(b.reserve(6).is_some());
        drop(c);
        assert_eq!(b.used(), 0);
        assert!(b.reserve(11).is_none());
        assert!(b.reserve(u64::MAX).is_none());
    }
}
