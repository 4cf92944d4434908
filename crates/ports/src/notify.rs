//! Messages to users (codes by e-mail or SMS) and the outbox that carries them: a
//! message is stored in the same transaction as the event that causes it
//! ([`crate::repository::UserRepository::append_notifying`]) and delivered later, by a
//! worker, through a [`Notifier`]. A request never waits on a mail server.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use userd_domain::Timestamp;
use userd_domain::values::UserId;

use crate::error::StoreError;

/// How a message reaches its recipient.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Channel {
    Email,
    Sms,
}

impl Channel {
    pub const ALL: [Channel; 2] = [Channel::Email, Channel::Sms];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
        }
    }

    pub fn parse(text: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.as_str() == text)
    }
}

/// One message to one recipient. `text` holds a code in clear until it is delivered;
/// the outbox forgets it then.
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    pub channel: Channel,
    /// An e-mail address or a phone number.
    pub to: String,
    /// The e-mail subject (unused for SMS).
    pub subject: String,
    pub text: String,
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("channel", &self.channel)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// A message to be stored with the events of a write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboundMessage {
    pub id: String,
    pub user_id: UserId,
    pub message: Message,
    pub created: Timestamp,
}

/// A message a worker has claimed for delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimedMessage {
    pub id: String,
    pub message: Message,
    /// Delivery attempts so far, this one included.
    pub attempt: u32,
}

/// How many messages wait, were delivered, or were given up on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    pub pending: u64,
    pub sent: u64,
    pub failed: u64,
}

/// The stored outbox, as the delivery worker sees it.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait Outbox: Send + Sync {
    /// Claims up to `limit` messages due at `now` for `lease`: no other worker, in this
    /// process or another, gets them until the lease ends. A worker that dies with a
    /// claim leaves the message to be claimed again after the lease (at least once).
    async fn claim_due(
        &self,
        now: Timestamp,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<ClaimedMessage>, StoreError>;

    /// Delivered: the message is done, and its text (with any code) is forgotten.
    async fn mark_sent(&self, id: &str, at: Timestamp) -> Result<(), StoreError>;

    /// Not delivered at `at`: try again at `retry_at`, or, with `None`, give up.
    async fn mark_failed(
        &self,
        id: &str,
        error: &str,
        at: Timestamp,
        retry_at: Option<Timestamp>,
    ) -> Result<(), StoreError>;

    /// When the next message waiting falls due, if any does.
    async fn next_due(&self) -> Result<Option<Timestamp>, StoreError>;

    async fn counts(&self) -> Result<OutboxCounts, StoreError>;

    /// Deletes the messages sent or given up on before `before`; how many.
    async fn purge_done(&self, before: Timestamp) -> Result<u64, StoreError>;
}

/// Why a message was not delivered.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// Worth another try later: the server is down, busy or answered a temporary error.
    #[error("delivery failed for now: {0}")]
    Transient(String),
    /// Another try would fail the same way: a rejected recipient, a malformed message.
    #[error("delivery refused: {0}")]
    Permanent(String),
}

/// Delivers one message through one channel.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait Notifier: Send + Sync {
    /// The channels this notifier delivers through.
    fn channels(&self) -> Vec<Channel>;

    async fn send(&self, message: &Message) -> Result<(), DeliveryError>;
}
