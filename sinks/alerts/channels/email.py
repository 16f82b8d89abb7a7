"""SMTP email (smtplib), STARTTLS by default, implicit TLS or plain as configured.

The Message-ID is derived from the alert id, so a mail re-sent after a crash carries the same one and
mail clients and archives can drop the copy. Replies codes 4xx are retryable and 5xx permanent
(RFC 5321 §4.2.1); a refused connection, a timeout or a dropped session is retryable. A server that
does not offer STARTTLS when it is required is a permanent failure: never fall back to plain text.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate

from sinks.alerts.alert import Alert
from sinks.alerts.channels.base import Outcome, SendResult
from sinks.alerts.config import ChannelKind, SmtpSettings

MESSAGE_ID_DOMAIN = "alerts.groundswell.invalid"


def message_id(alert: Alert) -> str:
    return f"<{alert.alert_id}@{MESSAGE_ID_DOMAIN}>"


def render(alert: Alert, sender: str, recipient: str) -> EmailMessage:
    payload = alert.payload
    message = EmailMessage()
    message["Subject"] = f"[Groundswell {payload['severity']}] {payload['title']}"
    message["From"] = sender
    message["To"] = recipient
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = message_id(alert)
    message["X-Groundswell-Alert-Id"] = alert.alert_id
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to alerts
    lines = [payload["summary"], "", f"Region: {payload['flag']['region']}", f"Severity: {payload['severity']}"]
    lines += ["", f"Dashboard: {payload['link']}", "", f"Alert {alert.alert_id}, flag {payload['flag']['id']}"]
    message.set_content("\n".join(lines) + "\n")
    return message


def _reply(code: int, what: str) -> SendResult:
    outcome: Outcome = "permanent" if code >= 500 else "retryable"
    return SendResult(outcome, f"SMTP {code} {what}", code)


class EmailChannel:
    kind = ChannelKind.EMAIL

    def __init__(self, settings: SmtpSettings) -> None:
        self._settings = settings

    def _tls(self) -> ssl.SSLContext:
        ca = self._settings.ca_file
        return ssl.create_default_context(cafile=str(ca) if ca else None)

    def _connect(self) -> smtplib.SMTP:
        s = self._settings
        if s.security == "ssl":
            return smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout_s, context=self._tls())
        smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout_s)
        if s.security == "starttls":
            try:
                smtp.starttls(context=self._tls())
            except BaseException:
                smtp.close()
                raise
        return smtp

    def send(self, alert: Alert, address: str) -> SendResult:
        s = self._settings
        try:
            with self._connect() as smtp:
                if s.username and s.password:
                    smtp.login(s.username, s.password.get_secret_value())
                smtp.send_message(render(alert, s.from_address, address))
            return SendResult("sent", "SMTP accepted", 250)
        except smtplib.SMTPNotSupportedError:
            return SendResult("permanent", f"the server does not support {s.security.upper()} or AUTH as configured")
        except smtplib.SMTPRecipientsRefused as exc:
            # Only the codes: the refused address itself is not kept.
            code = min(int(c) for c, _ in exc.recipients.values()) if exc.recipients else 550
            return _reply(code, "recipient refused")
        except smtplib.SMTPAuthenticationError as exc:
            return _reply(exc.smtp_code, "authentication failed")
        except smtplib.SMTPSenderRefused as exc:
            return _reply(exc.smtp_code, "sender refused")
        except smtplib.SMTPResponseException as exc:
            return _reply(exc.smtp_code, "refused")
        except ssl.SSLCertVerificationError:
            return SendResult("permanent", "TLS certificate not trusted (see smtp.ca_file)")
        except (smtplib.SMTPException, OSError) as exc:  # refused, timed out, dropped, TLS failure
            return SendResult("retryable", f"SMTP connection failed: {type(exc).__name__}")
