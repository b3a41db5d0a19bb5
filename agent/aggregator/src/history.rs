//! The fleet's status over the last 24 hours: a ring buffer of counts by status, sampled every
//! [`INTERVAL`] by a task, for the page's chart (`/api/v1/fleet/history`). Bounded: at most
//! [`POINTS`] points (about 100 KB).

use proto::fleet::{FleetHistory, HistoryPoint};
use std::collections::VecDeque;
use std::time::Duration;

/// How often the fleet's counts are sampled.
pub const INTERVAL: Duration = Duration::from_secs(60);
/// Points kept: 24 hours.
pub const POINTS: usize = 24 * 60;

#[derive(Debug, Default)]
pub struct History {
    points: VecDeque<HistoryPoint>,
}

impl History {
    pub fn push(&mut self, p: HistoryPoint) {
        if self.points.len() == POINTS {
            self.points.pop_front();
        }
        self.points.push_back(p);
    }

    /// The kept points, then `live` (the counts now), oldest first.
    pub fn snapshot(&self, live: HistoryPoint) -> FleetHistory {
        let mut points: Vec<HistoryPoint> = self.points.iter().cloned().collect();
        points.push(live);
        FleetHistory {
            interval_seconds: INTERVAL.as_secs_f64(),
            points,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_keeps_the_last_day() {
        let mut h = History::default();
        let p = |i: u64| HistoryPoint {
            at: i.to_string(),
            by_status: Default::default(),
            stale: i,
        };
        for i in 0..(POINTS as u64 + 10) {
            h.push(p(i));
        }
        let s = h.snapshot(p(9999));
        assert_eq!(s.points.len(), POINTS + 1);
        assert_eq!(s.points[0].stale, 10);
        assert_eq!(s.points.last().unwrap().stale, 9999);
    }
}
