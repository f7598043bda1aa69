//! How every loop that waits on something outside the process (NATS at
//! start, the bucket before `oms-init` made it, a consumer or a follow that
//! broke) waits before trying again: 100 ms, doubling, at most 5 s.

use std::time::Duration;

const FIRST: Duration = Duration::from_millis(100);
const LONGEST: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: FIRST }
    }
}

impl Backoff {
    /// What the next [`wait`](Backoff::wait) will sleep, for the log line
    /// that says why it waits.
    pub fn delay(&self) -> Duration {
        self.next
    }

    pub async fn wait(&mut self) {
        tokio::time::sleep(self.next).await;
        self.next = (self.next * 2).min(LONGEST);
    }

    /// After a success: the next trouble starts again from the first wait.
    pub fn reset(&mut self) {
        self.next = FIRST;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn doubles_up_to_five_seconds_and_resets() {
        let mut backoff = Backoff::default();
        let mut waits = Vec::new();
        for _ in 0..8 {
            waits.push(backoff.delay().as_millis());
            backoff.wait().await;
        }
        assert_eq!(waits, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        backoff.reset();
        assert_eq!(backoff.delay(), FIRST);
    }
}
