//! userd's notifiers, the adapters of the [`Notifier`] port: e-mail over SMTP through
//! lettre (plain relay, STARTTLS or implicit TLS, chosen by the URL) and SMS through an
//! HTTP webhook. [`Notifiers`] puts the configured ones behind one port.
//!
//! Failures are sorted for the delivery worker: a server that is down or answers a
//! temporary error is [`DeliveryError::Transient`] (try again later); a refused
//! recipient or a message the server will never take is [`DeliveryError::Permanent`].

use std::time::Duration;

use async_trait::async_trait;
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message as Mail};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use userd_ports::notify::{Channel, DeliveryError, Message, Notifier};

/// A notifier that cannot be built from its settings.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("notify.smtp.url: {0}")]
    SmtpUrl(String),
    #[error(
        "notify.smtp.from: {0:?} is not an e-mail address (like \"userd <no-reply@example.com>\")"
    )]
    From(String),
    #[error("notify.sms.webhook_url: {0}")]
    WebhookUrl(String),
}

/// E-mail over SMTP. `smtp://host:25` relays in plain text (a local relay);
/// `smtp://user:pass@host:587?tls=required` upgrades with STARTTLS;
/// `smtps://user:pass@host:465` speaks TLS from the first byte.
pub struct SmtpNotifier {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpNotifier {
    pub fn new(url: &str, from: &str, timeout: Duration) -> Result<SmtpNotifier, SetupError> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| SetupError::SmtpUrl(e.to_string()))?
            .timeout(Some(timeout))
            .build();
        let from = from
            .parse::<Mailbox>()
            .map_err(|_| SetupError::From(from.to_owned()))?;
        Ok(SmtpNotifier { transport, from })
    }

    async fn send_mail(&self, message: &Message) -> Result<(), DeliveryError> {
        let to = message
            .to
            .parse::<Mailbox>()
            .map_err(|e| DeliveryError::Permanent(format!("recipient: {e}")))?;
        let mail = Mail::builder()
            .from(self.from.clone())
            .to(to)
            .subject(message.subject.as_str())
            .header(ContentType::TEXT_PLAIN)
            .body(message.text.clone())
            .map_err(|e| DeliveryError::Permanent(format!("message: {e}")))?;
        match self.transport.send(mail).await {
            Ok(_) => Ok(()),
            Err(error) if error.is_permanent() => Err(DeliveryError::Permanent(error.to_string())),
            Err(error) => Err(DeliveryError::Transient(error.to_string())),
        }
    }
}

/// SMS through an HTTP webhook: `POST {"to", "text"}` as JSON; any 2xx is delivered.
pub struct WebhookNotifier {
    client: reqwest::Client,
    url: reqwest::Url,
}

impl WebhookNotifier {
    pub fn new(url: &str, timeout: Duration) -> Result<WebhookNotifier, SetupError> {
        let url = reqwest::Url::parse(url).map_err(|e| SetupError::WebhookUrl(e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(SetupError::WebhookUrl(format!(
                "{url} is not an http or https URL"
            )));
        }
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| SetupError::WebhookUrl(e.to_string()))?;
        Ok(WebhookNotifier { client, url })
    }

    async fn send_sms(&self, message: &Message) -> Result<(), DeliveryError> {
        let body = serde_json::json!({"to": message.to, "text": message.text});
        let answer = self
            .client
            .post(self.url.clone())
            .json(&body)
            .send()
            .await
            .map_err(|e| DeliveryError::Transient(e.to_string()))?;
        let status = answer.status();
        if status.is_success() {
            Ok(())
        } else if status.is_client_error()
            && status != reqwest::StatusCode::REQUEST_TIMEOUT
            && status != reqwest::StatusCode::TOO_MANY_REQUESTS
        {
            Err(DeliveryError::Permanent(format!(
                "the webhook answered {status}"
            )))
        } else {
            Err(DeliveryError::Transient(format!(
                "the webhook answered {status}"
            )))
        }
    }
}

/// The configured notifiers behind one port: each message goes to its channel's.
#[derive(Default)]
pub struct Notifiers {
    pub email: Option<SmtpNotifier>,
    pub sms: Option<WebhookNotifier>,
}

#[async_trait]
impl Notifier for Notifiers {
    fn channels(&self) -> Vec<Channel> {
        let mut channels = Vec::new();
        if self.email.is_some() {
            channels.push(Channel::Email);
        }
        if self.sms.is_some() {
            channels.push(Channel::Sms);
        }
        channels
    }

    async fn send(&self, message: &Message) -> Result<(), DeliveryError> {
        let unconfigured = || {
            DeliveryError::Transient(format!(
                "no notifier for {} is configured",
                message.channel.as_str()
            ))
        };
        match message.channel {
            Channel::Email => {
                self.email
                    .as_ref()
                    .ok_or_else(unconfigured)?
                    .send_mail(message)
                    .await
            }
            Channel::Sms => {
                self.sms
                    .as_ref()
                    .ok_or_else(unconfigured)?
                    .send_sms(message)
                    .await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls_choose_plain_starttls_or_implicit_tls() {
        let timeout = Duration::from_secs(5);
        for url in [
            "smtp://127.0.0.1:2525",
            "smtp://user:pass@mail.example.com:587?tls=required",
            "smtps://user:pass@mail.example.com:465",
        ] {
            assert!(
                SmtpNotifier::new(url, "userd <no-reply@example.com>", timeout).is_ok(),
                "{url}"
            );
        }
        for url in [
            "http://mail.example.com",
            "smtp://mail.example.com?tls=sometimes",
            "not a url",
        ] {
            assert!(matches!(
                SmtpNotifier::new(url, "no-reply@example.com", timeout),
                Err(SetupError::SmtpUrl(_))
            ));
        }
        assert!(matches!(
            SmtpNotifier::new("smtp://127.0.0.1:2525", "nobody", timeout),
            Err(SetupError::From(_))
        ));
        assert!(WebhookNotifier::new("ftp://sms.example.com", timeout).is_err());
    }
}
