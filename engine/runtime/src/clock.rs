//! Time comes through a [`Clock`], so tests control it and nothing in the
//! engine reads the system time behind the driver's back.

use chrono::{DateTime, Utc};

/// A point in time, UTC.
pub type Timestamp = DateTime<Utc>;

/// A source of the current time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Now.
    fn now(&self) -> Timestamp;
}

/// The system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Utc::now()
    }
}

#[cfg(feature = "test-util")]
mod fake {
    use std::sync::Mutex;

    use super::{Clock, Timestamp};

    /// A clock that stands still until told to move.
    #[derive(Debug)]
    pub struct FakeClock(Mutex<Timestamp>);

    impl FakeClock {
        /// A clock showing `at`.
        pub fn at(at: Timestamp) -> FakeClock {
            FakeClock(Mutex::new(at))
        }

        /// Moves the clock forward.
        pub fn advance(&self, by: std::time::Duration) {
            let mut now = self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            *now += chrono::Duration::from_std(by).unwrap_or(chrono::Duration::MAX);
        }
    }

    impl Clock for FakeClock {
        fn now(&self) -> Timestamp {
            *self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        }
    }
}

#[cfg(feature = "test-util")]
pub use fake::FakeClock;

/// `at + duration`, saturating at the latest representable time: a
/// `timeout: 999999999d` means "never", not a panic.
pub fn later(at: Timestamp, duration: std::time::Duration) -> Timestamp {
    chrono::Duration::from_std(duration)
        .ok()
        .and_then(|d| at.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}
