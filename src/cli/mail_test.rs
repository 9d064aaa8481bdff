//! `liaison mail test --to ADDR`: one short message through the configured
//! transport, and what the server said. Touches no store and no outbox.

use serde_json::json;

use super::args::Format;
use super::{exit, output};
use crate::config::Config;
use crate::mail::{Deliver, SendError, Transport};

/// `mail test`: exit 0 when the server accepted the message, 1 when it did
/// not (with its code and reason), 2 without `mail:` or with a bad address.
pub fn test(config: &Config, to: &str, format: Format) -> anyhow::Result<u8> {
    let Some(mail) = config.mail.as_ref() else {
        output::error_line("error: mail: is not configured, so there is no transport to test");
        return Ok(exit::INVALID);
    };
    let message = match test_message(&mail.from, to) {
        Ok(message) => message,
        Err(why) => {
            output::error_line(&format!("error: --to {to:?}: {why}"));
            return Ok(exit::INVALID);
        }
    };
    // lettre's SMTP pool starts a task when built: build and send inside one runtime.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let outcome = runtime.block_on(async {
        let transport = Transport::from_config(mail)?;
        let sent = transport.deliver(&message).await;
        Ok::<_, anyhow::Error>((transport.describe().to_owned(), sent))
    });
    let (via, sent) = outcome?;
    report(to, &via, &sent, format)?;
    Ok(if sent.is_ok() {
        exit::OK
    } else {
        exit::FAILURE
    })
}

/// The test message: From `mail.from`, To `to`, a fresh Message-ID.
fn test_message(from: &str, to: &str) -> Result<lettre::Message, String> {
    let unique = format!("test.{}.{:x}", crate::clock::now_ms(), std::process::id());
    let id = crate::mail::message_id(&unique, from).map_err(|e| e.to_string())?;
    let to: lettre::message::Mailbox = to.parse().map_err(|e| format!("not an address: {e}"))?;
    let from: lettre::message::Mailbox = from.parse().map_err(|e| format!("mail.from: {e}"))?;
    lettre::Message::builder()
        .from(from)
        .to(to)
        .subject("Liaison test message")
        .message_id(Some(id))
        .date_now()
        .body(
            "This message was sent by `liaison mail test` to check the mail transport.\n"
                .to_owned(),
        )
        .map_err(|e| e.to_string())
}

fn report(
    to: &str,
    via: &str,
    sent: &Result<crate::mail::Accepted, SendError>,
    format: Format,
) -> anyhow::Result<()> {
    match format {
        Format::Json => {
            let value = match sent {
                Ok(accepted) => {
                    json!({"to": to, "via": via, "sent": true, "reply": accepted.reply})
                }
                Err(e) => json!({
                    "to": to, "via": via, "sent": false, "code": e.code(),
                    "permanent": e.is_permanent(), "reason": e.reason(),
                }),
            };
            output::json_out(&value)?;
        }
        Format::Human => match sent {
            Ok(accepted) => output::line(&format!("sent to {to} via {via}: {}", accepted.reply)),
            Err(e) => {
                let kind = if e.is_permanent() {
                    "refused"
                } else {
                    "not sent (temporary)"
                };
                output::error_line(&format!("error: {kind}: {to} via {via}: {e}"));
            }
        },
    }
    Ok(())
}
