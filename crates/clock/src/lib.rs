//! The one notion of "now" that the IdP, the API and the BFF share.
//!
//! Every expiry in the flow (codes after 60 s, access tokens, refresh
//! tokens, sessions, cached keys) is a comparison with [`Clock::now`]. A
//! server reads the system's clock; a test holds a [`ManualClock`] and moves
//! it forward, so nothing has to sleep for a lifetime to run out, and the
//! three servers of one test agree on the time because they share one.

use std::{
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

/// Seconds since the Unix epoch, from the system or from a test's hand.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    /// `None`: the system clock.
    manual: Option<Arc<AtomicI64>>,
}

impl Clock {
    /// The system's clock: what every binary uses.
    pub fn system() -> Clock {
        Clock::default()
    }

    /// Seconds since the Unix epoch.
    pub fn now(&self) -> i64 {
        match &self.manual {
            Some(seconds) => seconds.load(Ordering::SeqCst),
            None => system_now(),
        }
    }

    /// How long until `deadline` (a Unix time), zero if it has passed.
    pub fn until(&self, deadline: i64) -> Duration {
        Duration::from_secs(u64::try_from(deadline - self.now()).unwrap_or(0))
    }
}

/// A clock that stands still until a test moves it: start it at the
/// system's time, hand [`ManualClock::clock`] to the servers, and call
/// [`ManualClock::advance`] where the test would otherwise sleep.
#[derive(Clone, Debug)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// A manual clock showing the system's time now.
    pub fn starting_now() -> ManualClock {
        ManualClock(Arc::new(AtomicI64::new(system_now())))
    }

    /// The clock to give the servers; it shows whatever this hand sets.
    pub fn clock(&self) -> Clock {
        Clock {
            manual: Some(self.0.clone()),
        }
    }

    /// Moves the time forward.
    pub fn advance(&self, by: Duration) {
        let seconds = i64::try_from(by.as_secs()).unwrap_or(i64::MAX);
        self.0.fetch_add(seconds, Ordering::SeqCst);
    }

    pub fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

fn system_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told_and_every_copy_sees_it() {
        let hand = ManualClock::starting_now();
        let clock = hand.clock();
        let copy = clock.clone();
        let start = clock.now();
        assert!((start - Clock::system().now()).abs() <= 1);
        hand.advance(Duration::from_secs(61));
        assert_eq!(clock.now(), start + 61);
        assert_eq!(copy.now(), start + 61);
        assert_eq!(clock.until(start + 60), Duration::ZERO);
        assert_eq!(clock.until(start + 71), Duration::from_secs(10));
    }
}
