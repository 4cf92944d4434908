//! The delivery worker: a thread of its own that carries the outbox's messages to the
//! notifiers, woken when this process stores a message and otherwise every
//! `notify.poll_interval_ms` (for messages other processes stored, and for retries).
//! Requests never wait on it. Once an hour it also tidies up: done messages older than
//! `notify.keep_done_days`, and login sessions that can never count again.

use std::sync::Arc;
use std::time::Duration;

use prometheus::{IntCounterVec, IntGaugeVec, Opts};
use tokio::sync::{Notify, watch};
use userd_app::clock::SystemClock;
use userd_app::messages::{Courier, Delivery, RetryPolicy, RoundReport};
use userd_domain::Timestamp;
use userd_notify::{Notifiers, SetupError, SmtpNotifier, WebhookNotifier};
use userd_ports::notify::{Notifier, Outbox, OutboxCounts};
use userd_ports::sessions::SessionRepository;

use crate::settings::NotifySettings;

/// Messages claimed at a time.
const BATCH: u32 = 16;

/// How often done messages and ended sessions are purged.
const TIDY_EVERY: Duration = Duration::from_secs(3600);

/// How often the outbox is counted for metrics when this process delivered nothing.
const COUNT_EVERY: Duration = Duration::from_secs(15);

/// The notifiers the settings configure (none by default).
pub fn notifiers(settings: &NotifySettings) -> Result<Notifiers, SetupError> {
    let timeout = Duration::from_secs(settings.send_timeout_secs);
    Ok(Notifiers {
        email: (!settings.smtp.url.is_empty())
            .then(|| SmtpNotifier::new(&settings.smtp.url, &settings.smtp.from, timeout))
            .transpose()?,
        sms: (!settings.sms.webhook_url.is_empty())
            .then(|| WebhookNotifier::new(&settings.sms.webhook_url, timeout))
            .transpose()?,
    })
}

pub fn retry_policy(settings: &NotifySettings) -> RetryPolicy {
    let timeout = Duration::from_secs(settings.send_timeout_secs);
    RetryPolicy {
        first_retry: Duration::from_millis(settings.retry_first_ms),
        longest_wait: Duration::from_secs(settings.retry_longest_secs)
            .max(Duration::from_millis(settings.retry_first_ms)),
        max_attempts: settings.max_attempts,
        // A claim outlives a delivery that runs into its timeout, with room to record it.
        lease: timeout.saturating_mul(2).max(Duration::from_secs(10)),
    }
}

/// The metrics of delivery: the outbox by state (all processes), and this process's
/// delivery outcomes.
#[derive(Clone)]
pub struct DeliveryMetrics {
    messages: IntGaugeVec,
    deliveries: IntCounterVec,
}

impl DeliveryMetrics {
    pub fn new(registry: &prometheus::Registry) -> Result<Self, prometheus::Error> {
        let messages = IntGaugeVec::new(
            Opts::new(
                "userd_outbox_messages",
                "Messages in the outbox, by state: pending, sent, failed (given up).",
            ),
            &["state"],
        )?;
        let deliveries = IntCounterVec::new(
            Opts::new(
                "userd_outbox_deliveries_total",
                "Delivery attempts by this process, by outcome: sent, retry, failed.",
            ),
            &["outcome"],
        )?;
        registry.register(Box::new(messages.clone()))?;
        registry.register(Box::new(deliveries.clone()))?;
        Ok(DeliveryMetrics {
            messages,
            deliveries,
        })
    }
}

/// The running worker.
pub struct DeliveryWorker {
    thread: std::thread::JoinHandle<()>,
}

impl DeliveryWorker {
    /// What the use cases need to know: the channels served, and how to wake the worker.
    pub fn delivery(notifier: &dyn Notifier, wake: &Arc<Notify>) -> Delivery {
        let wake = Arc::clone(wake);
        Delivery {
            channels: notifier.channels(),
            stored: Some(Arc::new(move || wake.notify_one())),
        }
    }

    pub fn start(
        sessions: Arc<dyn SessionRepository>,
        outbox: Arc<dyn Outbox>,
        notifier: Arc<dyn Notifier>,
        settings: &NotifySettings,
        metrics: DeliveryMetrics,
        wake: Arc<Notify>,
        stop: watch::Receiver<bool>,
    ) -> std::io::Result<DeliveryWorker> {
        let deliveries = metrics.deliveries.clone();
        let courier = Courier {
            outbox,
            notifier,
            clock: Arc::new(SystemClock),
            policy: retry_policy(settings),
            batch: BATCH,
            observer: Some(Arc::new(move |outcome| {
                deliveries.with_label_values(&[outcome]).inc();
            })),
        };
        let poll = Duration::from_millis(settings.poll_interval_ms);
        let keep_done = (settings.keep_done_days > 0)
            .then(|| Duration::from_secs(settings.keep_done_days.saturating_mul(86_400)));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let thread = std::thread::Builder::new()
            .name("userd-delivery".to_owned())
            .spawn(move || {
                let tidy = Tidy {
                    sessions,
                    keep_done,
                };
                runtime.block_on(work(courier, poll, tidy, metrics, wake, stop));
            })?;
        Ok(DeliveryWorker { thread })
    }

    /// Waits for the worker to stop, once told to; a delivery in flight finishes first.
    pub fn finish(self) {
        if self.thread.join().is_err() {
            tracing::error!("the delivery worker panicked");
        }
    }
}

/// What the worker deletes once an hour.
struct Tidy {
    sessions: Arc<dyn SessionRepository>,
    keep_done: Option<Duration>,
}

impl Tidy {
    async fn run(&self, courier: &Courier) {
        let now = courier.clock.now();
        if let Some(keep) = self.keep_done {
            let keep = i64::try_from(keep.as_micros()).unwrap_or(i64::MAX);
            let before = Timestamp::from_unix_micros(now.unix_micros().saturating_sub(keep));
            match courier.outbox.purge_done(before).await {
                Ok(0) => {}
                Ok(count) => tracing::info!(count, "purged old messages from the outbox"),
                Err(error) => tracing::warn!(%error, "the outbox could not be purged"),
            }
        }
        match self.sessions.purge_ended(now).await {
            Ok(0) => {}
            Ok(count) => tracing::info!(count, "purged ended login sessions"),
            Err(error) => tracing::warn!(%error, "ended sessions could not be purged"),
        }
    }
}

async fn work(
    courier: Courier,
    poll: Duration,
    tidy: Tidy,
    metrics: DeliveryMetrics,
    wake: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    let mut tidied: Option<std::time::Instant> = None;
    let mut counted: Option<std::time::Instant> = None;
    let mut published: Option<OutboxCounts> = None;
    while !*stop.borrow() {
        if tidied.is_none_or(|at| at.elapsed() >= TIDY_EVERY) {
            tidied = Some(std::time::Instant::now());
            tidy.run(&courier).await;
        }
        let delivered = match courier.deliver_due().await {
            Ok(report) => report != RoundReport::default(),
            Err(error) => {
                tracing::warn!(%error, "the outbox cannot be read; delivery waits");
                false
            }
        };
        // Counting every row is not free on a large outbox: after a round that changed
        // something, else now and then (for what other processes did).
        let stale = counted.is_none_or(|at: std::time::Instant| at.elapsed() >= COUNT_EVERY);
        if (delivered || stale)
            && let Ok(counts) = courier.outbox.counts().await
        {
            counted = Some(std::time::Instant::now());
            if published != Some(counts) {
                published = Some(counts);
                let states = [
                    ("pending", counts.pending),
                    ("sent", counts.sent),
                    ("failed", counts.failed),
                ];
                for (state, count) in states {
                    let count = i64::try_from(count).unwrap_or(i64::MAX);
                    metrics.messages.with_label_values(&[state]).set(count);
                }
                tracing::info!(
                    pending = counts.pending,
                    sent = counts.sent,
                    failed = counts.failed,
                    "outbox counts changed"
                );
            }
        }
        // Sleep until the next retry falls due, at most one poll interval.
        let wait = match courier.outbox.next_due().await {
            Ok(Some(due)) => {
                let micros = due.unix_micros() - courier.clock.now().unix_micros();
                Duration::from_micros(u64::try_from(micros).unwrap_or_default()).min(poll)
            }
            _ => poll,
        };
        tokio::select! {
            _ = stop.changed() => {}
            () = wake.notified() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}
