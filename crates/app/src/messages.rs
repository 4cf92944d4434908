//! What userd says to users: the texts of the messages that carry codes, with ZITADEL's
//! `urlTemplate` placeholders, and which channels can carry them. Messages are stored
//! in the outbox with the event that causes them and delivered later by a worker.

use std::sync::Arc;
use std::time::Duration;

use userd_domain::Timestamp;
use userd_domain::user::{ContactKind, User};
use userd_ports::error::ServiceError;
use userd_ports::notify::{Channel, Message, OutboundMessage};

/// The channels a notifier is configured for, and a signal for the delivery worker of
/// this process when a message has been stored (workers elsewhere find it by polling).
#[derive(Clone, Default)]
pub struct Delivery {
    pub channels: Vec<Channel>,
    pub stored: Option<Arc<dyn Fn() + Send + Sync>>,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("channels", &self.channels)
            .finish_non_exhaustive()
    }
}

impl Delivery {
    /// Refuses a channel no notifier serves.
    pub(crate) fn require(&self, channel: Channel) -> Result<(), ServiceError> {
        if self.channels.contains(&channel) {
            Ok(())
        } else {
            Err(ServiceError::NotificationsNotConfigured)
        }
    }

    pub(crate) fn tell_worker(&self) {
        if let Some(stored) = &self.stored {
            stored();
        }
    }
}

/// The longest `urlTemplate` accepted, as ZITADEL's API allows.
pub const MAX_URL_TEMPLATE: usize = 200;

/// The placeholders of a `urlTemplate`, with ZITADEL's names.
const PLACEHOLDERS: [&str; 3] = ["UserID", "Code", "OrgID"];

/// Fills `{{.UserID}}`, `{{.Code}}` and `{{.OrgID}}` (spaces inside the braces allowed);
/// anything else between braces is refused, so a typo never reaches a user.
pub fn render_url(template: &str, user: &User, code: &str) -> Result<String, ServiceError> {
    let refuse = |message: String| ServiceError::InvalidArgument {
        reason: "INVALID_URL_TEMPLATE",
        message: format!("urlTemplate: {message}"),
        field: Some("urlTemplate".to_owned()),
    };
    if template.len() > MAX_URL_TEMPLATE {
        return Err(refuse(format!("at most {MAX_URL_TEMPLATE} bytes")));
    }
    let mut out = String::with_capacity(template.len() + code.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| refuse("a {{ without its }}".to_owned()))?;
        let name = after[..end].trim().trim_start_matches('.');
        out.push_str(&match name {
            "UserID" => user.id.to_string(),
            "Code" => code.to_owned(),
            "OrgID" => user.org_id.to_string(),
            other => {
                return Err(refuse(format!(
                    "unknown placeholder {other:?}; use one of {PLACEHOLDERS:?}"
                )));
            }
        });
        rest = &after[end + 2..];
    }
    if rest.contains("}}") {
        return Err(refuse("a }} without its {{".to_owned()));
    }
    out.push_str(rest);
    Ok(out)
}

/// The address of `user` on `channel`.
fn recipient(user: &User, channel: Channel) -> Result<String, ServiceError> {
    let address = match channel {
        Channel::Email => user.contact.email.as_ref().map(|e| e.address.as_str()),
        Channel::Sms => user.contact.phone.as_ref().map(|p| p.number.as_str()),
    };
    address
        .map(str::to_owned)
        .ok_or(ServiceError::NoContact(channel))
}

fn minutes(ttl: Duration) -> u64 {
    ttl.as_secs().div_ceil(60).max(1)
}

/// What a code message says, for one purpose.
struct Wording {
    subject: &'static str,
    /// The e-mail's first paragraph.
    why: &'static str,
    /// The SMS's words before the code.
    sms: &'static str,
}

const RESET: Wording = Wording {
    subject: "Reset your password",
    why: "Someone asked to reset the password of your account.",
    sms: "Your password reset code",
};

const VERIFY_EMAIL: Wording = Wording {
    subject: "Verify your e-mail address",
    why: "Please confirm that this e-mail address is yours.",
    sms: "Your verification code",
};

const VERIFY_PHONE: Wording = Wording {
    subject: "Verify your phone number",
    why: "Please confirm that this phone number is yours.",
    sms: "Your verification code",
};

/// A message carrying `code` to `user` on `channel`, with a link from `url_template`.
fn code_message(
    wording: &Wording,
    user: &User,
    channel: Channel,
    code: &str,
    url_template: Option<&str>,
    ttl: Duration,
) -> Result<Message, ServiceError> {
    let link = url_template
        .map(|template| render_url(template, user, code))
        .transpose()?;
    let to = recipient(user, channel)?;
    let minutes = minutes(ttl);
    let text = match channel {
        Channel::Email => {
            let mut text = format!(
                "{}\n\nYour code: {code}\n\nIt works once, within {minutes} minutes.\n",
                wording.why
            );
            if let Some(link) = &link {
                text.push_str(&format!("\nOr follow this link:\n{link}\n"));
            }
            text.push_str("\nIf you did not expect this, ignore this message.\n");
            text
        }
        Channel::Sms => match &link {
            Some(link) => format!("{}: {code} ({link})", wording.sms),
            None => format!(
                "{}: {code}. It works once, within {minutes} minutes.",
                wording.sms
            ),
        },
    };
    Ok(Message {
        channel,
        to,
        subject: wording.subject.to_owned(),
        text,
    })
}

/// The message that carries a password-reset code.
pub fn password_reset(
    user: &User,
    channel: Channel,
    code: &str,
    url_template: Option<&str>,
    ttl: Duration,
) -> Result<Message, ServiceError> {
    code_message(&RESET, user, channel, code, url_template, ttl)
}

/// The channel that reaches an address of `kind`.
pub fn channel_of(kind: ContactKind) -> Channel {
    match kind {
        ContactKind::Email => Channel::Email,
        ContactKind::Phone => Channel::Sms,
    }
}

/// The message that carries a code proving an address, sent to that address.
pub fn contact_code(
    user: &User,
    kind: ContactKind,
    code: &str,
    url_template: Option<&str>,
    ttl: Duration,
) -> Result<Message, ServiceError> {
    let wording = match kind {
        ContactKind::Email => &VERIFY_EMAIL,
        ContactKind::Phone => &VERIFY_PHONE,
    };
    code_message(wording, user, channel_of(kind), code, url_template, ttl)
}

/// A message ready for the outbox.
pub(crate) fn outbound(
    id: String,
    user: &User,
    message: Message,
    at: Timestamp,
) -> OutboundMessage {
    OutboundMessage {
        id,
        user_id: user.id.clone(),
        message,
        created: at,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use userd_domain::user::{EmailContact, UserCreated};
    use userd_domain::values::{Email, OrgId, UserData, UserId};

    use super::*;

    fn ada() -> User {
        let created = UserCreated {
            org_id: OrgId::new("acme").unwrap(),
            schema_id: None,
            data: UserData::from_value(json!({})).unwrap(),
            contact: userd_domain::user::Contact {
                email: Some(EmailContact {
                    address: Email::new("ada@example.com").unwrap(),
                    verified: false,
                }),
                phone: None,
            },
            usernames: Vec::new(),
        };
        User::create(
            UserId::new("u1").unwrap(),
            created,
            Timestamp::from_unix_micros(1),
            None,
        )
        .unwrap()
        .0
    }

    #[test]
    fn url_templates_take_zitadels_placeholders_and_nothing_else() {
        let user = ada();
        assert_eq!(
            render_url(
                "https://x.test/r?u={{.UserID}}&c={{ .Code }}&o={{.OrgID}}",
                &user,
                "C0DE"
            )
            .unwrap(),
            "https://x.test/r?u=u1&c=C0DE&o=acme"
        );
        for broken in [
            "https://x.test/{{.Secret}}",
            "https://x.test/{{.Code",
            "a }} b",
        ] {
            let error = render_url(broken, &user, "C0DE").unwrap_err();
            assert_eq!(error.reason(), "INVALID_URL_TEMPLATE", "{broken}");
        }
        let long = format!("https://x.test/{}", "a".repeat(MAX_URL_TEMPLATE));
        assert!(render_url(&long, &user, "C0DE").is_err());
    }

    #[test]
    fn retries_wait_twice_as_long_each_time_up_to_a_bound_then_stop() {
        let policy = RetryPolicy {
            first_retry: Duration::from_secs(2),
            longest_wait: Duration::from_secs(10),
            max_attempts: 5,
            lease: Duration::from_secs(60),
        };
        let now = Timestamp::from_unix_micros(0);
        let waits: Vec<Option<i64>> = (1..=5)
            .map(|attempt| {
                policy
                    .retry_at(attempt, now)
                    .map(|at| at.unix_micros() / 1_000_000)
            })
            .collect();
        assert_eq!(waits, [Some(2), Some(4), Some(8), Some(10), None]);
    }

    #[test]
    fn a_reset_message_carries_the_code_and_needs_an_address() {
        let user = ada();
        let ttl = Duration::from_secs(3600);
        let mail = password_reset(
            &user,
            Channel::Email,
            "C0DE",
            Some("https://x.test/{{.Code}}"),
            ttl,
        )
        .unwrap();
        assert_eq!(mail.to, "ada@example.com");
        assert!(mail.text.contains("C0DE") && mail.text.contains("https://x.test/C0DE"));
        assert!(mail.text.contains("60 minutes"), "{}", mail.text);
        let error = password_reset(&user, Channel::Sms, "C0DE", None, ttl).unwrap_err();
        assert_eq!(error.reason(), "PHONE_NOT_SET");
    }
}

/// When to try a message again, and when to give up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The wait after the first failure; it doubles with each further one...
    pub first_retry: Duration,
    /// ...up to this.
    pub longest_wait: Duration,
    /// Attempts in all, the first one included.
    pub max_attempts: u32,
    /// How long a worker holds a message it claimed: longer than one delivery may take.
    pub lease: Duration,
}

impl RetryPolicy {
    /// The time of the next try after failed attempt number `attempt`, or `None` when it
    /// was the last one.
    pub fn retry_at(&self, attempt: u32, now: Timestamp) -> Option<Timestamp> {
        if attempt >= self.max_attempts {
            return None;
        }
        let doublings = attempt.saturating_sub(1).min(31);
        let wait = self
            .first_retry
            .saturating_mul(1 << doublings)
            .min(self.longest_wait);
        Some(now.saturating_add(wait))
    }
}

/// What one delivery round did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RoundReport {
    pub sent: u32,
    /// Failed for now, to be tried again.
    pub retried: u32,
    /// Given up on: a permanent refusal, or the last attempt.
    pub failed: u32,
}

/// Delivers what the outbox holds, through the notifier: claim, send, record.
pub struct Courier {
    pub outbox: Arc<dyn userd_ports::notify::Outbox>,
    pub notifier: Arc<dyn userd_ports::notify::Notifier>,
    pub clock: Arc<dyn userd_ports::clock::Clock>,
    pub policy: RetryPolicy,
    /// Messages claimed at a time.
    pub batch: u32,
    /// Told each outcome as it is recorded (`sent`, `retry`, `failed`), for metrics.
    pub observer: Option<Arc<dyn Fn(&'static str) + Send + Sync>>,
}

impl Courier {
    fn observe(&self, outcome: &'static str) {
        if let Some(observer) = &self.observer {
            observer(outcome);
        }
    }

    /// Delivers every message due now, batch after batch, until none is left.
    pub async fn deliver_due(&self) -> Result<RoundReport, userd_ports::error::StoreError> {
        use userd_ports::notify::DeliveryError;
        let mut report = RoundReport::default();
        loop {
            let claimed = self
                .outbox
                .claim_due(self.clock.now(), self.policy.lease, self.batch)
                .await?;
            if claimed.is_empty() {
                return Ok(report);
            }
            for message in claimed {
                let channel = message.message.channel.as_str();
                match self.notifier.send(&message.message).await {
                    Ok(()) => {
                        // Counted as soon as the server took it: once the outbox records
                        // it as sent, every process's counter already includes it.
                        self.observe("sent");
                        self.outbox.mark_sent(&message.id, self.clock.now()).await?;
                        tracing::info!(message_id = %message.id, channel, "message delivered");
                        report.sent += 1;
                    }
                    Err(error) => {
                        let now = self.clock.now();
                        let retry_at = match &error {
                            DeliveryError::Transient(_) => {
                                self.policy.retry_at(message.attempt, now)
                            }
                            DeliveryError::Permanent(_) => None,
                        };
                        let text = error.to_string();
                        self.outbox
                            .mark_failed(&message.id, &text, now, retry_at)
                            .await?;
                        match retry_at {
                            Some(at) => {
                                tracing::warn!(message_id = %message.id, channel, attempt = message.attempt,
                                    retry_at = %at.to_rfc3339(), error = %text, "message not delivered; will retry");
                                self.observe("retry");
                                report.retried += 1;
                            }
                            None => {
                                tracing::error!(message_id = %message.id, channel, attempt = message.attempt,
                                    error = %text, "message not delivered; given up");
                                self.observe("failed");
                                report.failed += 1;
                            }
                        }
                    }
                }
            }
        }
    }
}
