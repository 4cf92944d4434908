//! When an RPC connection has carried no call for a while. The HTTP port closes idle
//! keep-alive connections after `server.keep_alive_secs`; without the same here, an HTTP/2
//! connection would stay open for as long as its client kept it, holding one of its
//! worker's `server.max_connections` places.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// The calls of one connection: how many are open, and when the last one ended.
pub(crate) struct Activity {
    opened: Instant,
    in_flight: AtomicUsize,
    /// When the last call ended (or the connection opened), in microseconds after `opened`.
    last_ended_us: AtomicU64,
}

/// A call counted as open until dropped: the request's handling, then its answer's body,
/// so that a stream (reflection) counts for as long as it is open.
pub(crate) struct OpenCall {
    activity: Arc<Activity>,
}

impl Activity {
    pub(crate) fn new() -> Arc<Activity> {
        Arc::new(Activity {
            opened: Instant::now(),
            in_flight: AtomicUsize::new(0),
            last_ended_us: AtomicU64::new(0),
        })
    }

    pub(crate) fn open_call(self: &Arc<Self>) -> OpenCall {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        OpenCall {
            activity: Arc::clone(self),
        }
    }

    /// When the connection became idle, if it is.
    fn idle_since(&self) -> Option<Instant> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let ended = self.last_ended_us.load(Ordering::Acquire);
        Some(self.opened + Duration::from_micros(ended))
    }

    /// Completes once no call has been open for `idle`; never, if `idle` reaches past
    /// the clock's range.
    pub(crate) async fn idle_for(&self, idle: Duration) {
        loop {
            let now = Instant::now();
            let since = self.idle_since();
            // While a call is open, the connection cannot be idle sooner than `idle` from
            // now.
            let Some(due) = since.unwrap_or(now).checked_add(idle) else {
                return std::future::pending().await;
            };
            if since.is_some() && due <= now {
                return;
            }
            tokio::time::sleep_until(due).await;
        }
    }
}

impl Drop for OpenCall {
    fn drop(&mut self) {
        let activity = &self.activity;
        let ended = u64::try_from(activity.opened.elapsed().as_micros()).unwrap_or(u64::MAX);
        // The end time first: whoever sees the count fall to zero sees when it did.
        activity.last_ended_us.fetch_max(ended, Ordering::AcqRel);
        activity.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDLE: Duration = Duration::from_secs(5);

    /// Whether `idle_for(idle)` has completed by now, polled once.
    fn idle_for_now(activity: &Activity, idle: Duration) -> bool {
        let idle = std::pin::pin!(activity.idle_for(idle));
        let waker = std::task::Waker::noop();
        idle.poll(&mut std::task::Context::from_waker(waker))
            .is_ready()
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_without_calls_is_idle_after_the_timeout() {
        let activity = Activity::new();
        tokio::time::advance(IDLE - Duration::from_millis(1)).await;
        assert!(!idle_for_now(&activity, IDLE));
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(idle_for_now(&activity, IDLE));
    }

    #[tokio::test(start_paused = true)]
    async fn an_open_call_keeps_the_connection_busy_however_long_it_lasts() {
        let activity = Activity::new();
        let call = activity.open_call();
        tokio::time::advance(IDLE * 3).await;
        assert!(!idle_for_now(&activity, IDLE));
        drop(call);
        assert!(
            !idle_for_now(&activity, IDLE),
            "idle counts from the call's end"
        );
        tokio::time::advance(IDLE).await;
        assert!(idle_for_now(&activity, IDLE));
    }

    #[tokio::test(start_paused = true)]
    async fn a_timeout_beyond_the_clock_never_ends_the_wait() {
        let activity = Activity::new();
        tokio::time::advance(IDLE).await;
        assert!(!idle_for_now(&activity, Duration::MAX));
    }

    #[tokio::test(start_paused = true)]
    async fn the_wait_follows_calls_that_start_and_end_while_it_waits() {
        let activity = Activity::new();
        let waiting = {
            let activity = Arc::clone(&activity);
            tokio::spawn(async move { activity.idle_for(IDLE).await })
        };
        tokio::time::advance(IDLE / 2).await;
        let call = activity.open_call();
        tokio::time::advance(IDLE).await;
        assert!(!waiting.is_finished());
        drop(call);
        let ended = Instant::now();
        waiting.await.unwrap();
        assert!(Instant::now() >= ended + IDLE);
    }
}
