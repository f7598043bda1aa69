//! When a serving instance leaves its queue group, decided apart from the
//! I/O that carries it out (`service::serve`), so every path is a unit test.
//!
//! On SIGTERM the instance first leaves *by count*: it tells the server to
//! stop routing to it after [`LEAVE_AFTER`] more messages, and the
//! subscription ends when that many arrived, so none is lost. With too
//! little traffic to reach the count, it drains once no request came for
//! [`QUIET`], or [`MAX_LEAVING`] after SIGTERM at the latest. Whatever
//! happens, [`DRAIN_DEADLINE`] after SIGTERM it leaves what is unanswered.

use std::time::Duration;
use tokio::time::Instant;

/// Messages an instance still takes after SIGTERM before the server stops
/// routing to it.
pub const LEAVE_AFTER: u64 = 1024;
/// A leaving instance drains after this long at the latest.
pub const MAX_LEAVING: Duration = Duration::from_secs(3);
/// A leaving instance that got no request for this long drains at once.
pub const QUIET: Duration = Duration::from_millis(100);
/// From SIGTERM to leaving whatever is still unanswered: covers leaving,
/// the drain and the work in flight.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Serving,
    /// Unsubscribed by count: takes what the server still routes here.
    Leaving,
    /// Unsubscribed outright: waits for the subscription to close.
    Draining,
}

/// Why serving ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Left {
    /// The server routed the counted messages and no more: none is lost.
    ByCount,
    /// After a quiet drain, the subscription closed.
    Drained,
    Deadline,
    /// SIGTERM without a NATS connection: nothing to drain.
    Disconnected,
    /// The subscription ended, or the server refused the unsubscribe.
    Failed,
}

/// Why a leaving instance drains before the count is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrainReason {
    /// No request came for [`QUIET`].
    Quiet,
    /// [`MAX_LEAVING`] passed since SIGTERM.
    LeftTooLong,
}

#[derive(Debug)]
pub struct Drain {
    phase: Phase,
    received: u64,
    last_message: Instant,
    phase_since: Instant,
    deadline: Option<Instant>,
}

impl Drain {
    pub fn new(now: Instant) -> Drain {
        Drain {
            phase: Phase::Serving,
            received: 0,
            last_message: now,
            phase_since: now,
            deadline: None,
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    pub fn received(&self) -> u64 {
        self.received
    }

    pub fn on_message(&mut self, now: Instant) {
        self.received += 1;
        self.last_message = now;
    }

    /// SIGTERM: starts the deadline and leaving; the subscription is to
    /// end after the message with this number.
    pub fn leave(&mut self, now: Instant) -> u64 {
        self.deadline = Some(now + DRAIN_DEADLINE);
        self.phase = Phase::Leaving;
        self.phase_since = now;
        self.received + LEAVE_AFTER
    }

    /// When what is unanswered is left, once SIGTERM came.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// When a leaving instance drains if nothing else happens first.
    pub fn drain_at(&self) -> Option<Instant> {
        (self.phase == Phase::Leaving).then(|| self.quiet_at().min(self.longest()))
    }

    fn quiet_at(&self) -> Instant {
        self.last_message.max(self.phase_since) + QUIET
    }

    fn longest(&self) -> Instant {
        self.phase_since + MAX_LEAVING
    }

    /// The drain timer fired: drain now, and why.
    pub fn start_draining(&mut self, now: Instant) -> DrainReason {
        let reason = if self.quiet_at() <= self.longest() {
            DrainReason::Quiet
        } else {
            DrainReason::LeftTooLong
        };
        self.phase = Phase::Draining;
        self.phase_since = now;
        reason
    }

    /// The subscription ended: what that means in this phase.
    pub fn closed(&self) -> Left {
        match self.phase {
            Phase::Leaving => Left::ByCount,
            Phase::Draining => Left::Drained,
            Phase::Serving => Left::Failed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[tokio::test(start_paused = true)]
    async fn leaves_by_count_after_what_it_received() {
        let t0 = Instant::now();
        let mut drain = Drain::new(t0);
        for _ in 0..5 {
            drain.on_message(t0);
        }
        assert_eq!(drain.phase(), Phase::Serving);
        assert_eq!(drain.drain_at(), None);
        assert_eq!(drain.closed(), Left::Failed);
        assert_eq!(drain.leave(t0), 5 + LEAVE_AFTER);
        assert_eq!(drain.deadline(), Some(t0 + DRAIN_DEADLINE));
        assert_eq!(drain.closed(), Left::ByCount);
    }

    #[tokio::test(start_paused = true)]
    async fn a_quiet_instance_drains_after_the_quiet_time() {
        let t0 = Instant::now();
        let mut drain = Drain::new(t0);
        drain.leave(t0);
        assert_eq!(drain.drain_at(), Some(t0 + QUIET));
        // A request meanwhile moves the quiet time on.
        tokio::time::advance(ms(60)).await;
        drain.on_message(Instant::now());
        assert_eq!(drain.drain_at(), Some(t0 + ms(60) + QUIET));
        tokio::time::advance(QUIET).await;
        assert_eq!(drain.start_draining(Instant::now()), DrainReason::Quiet);
        assert_eq!(drain.phase(), Phase::Draining);
        assert_eq!(drain.drain_at(), None);
        assert_eq!(drain.closed(), Left::Drained);
    }

    #[tokio::test(start_paused = true)]
    async fn steady_traffic_below_the_count_drains_at_max_leaving() {
        let t0 = Instant::now();
        let mut drain = Drain::new(t0);
        drain.leave(t0);
        // A request every 50 ms: never quiet for 100 ms.
        while Instant::now() < t0 + MAX_LEAVING {
            tokio::time::advance(ms(50)).await;
            drain.on_message(Instant::now());
        }
        assert_eq!(drain.drain_at(), Some(t0 + MAX_LEAVING));
        assert_eq!(
            drain.start_draining(Instant::now()),
            DrainReason::LeftTooLong
        );
        // The deadline is still SIGTERM's.
        assert_eq!(drain.deadline(), Some(t0 + DRAIN_DEADLINE));
    }
}
