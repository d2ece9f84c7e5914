"""Sending one notification: e-mail over SMTP (STARTTLS, login) or an HTTP POST to a webhook.

The one seam to the outside for notifications. Every attempt is bounded by `notify.timeout` per
network step, and every failure becomes NotDelivered with a reason in our words that names the
server and never the person (a mail server's refusal can quote the address; it is not repeated).
Webhooks are posted directly (no proxy from the environment) and never follow a redirect; only a
webhook's scheme and host appear in a reason, since its path often holds a token.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from facility.errors import NotDelivered
from facility.notify import message
from facility.notify.outbox import Claimed
from facility.settings import Notify
from facility.timeutil import format_duration


def deliver(
    notification: Claimed, notify: Notify, *, site_zone: tzinfo, clock: Callable[[], datetime]
) -> None:
    """Send `notification` its way; NotDelivered when that failed."""
    if notification.channel == "email":
        send_email(notification, notify, site_zone=site_zone, now=clock())
    else:
        post_webhook(notification, notify, clock=clock)


# --- e-mail --------------------------------------------------------------------------------------


def send_email(notification: Claimed, notify: Notify, *, site_zone: tzinfo, now: datetime) -> None:
    """Hand the e-mail to `notify.smtp_host`: STARTTLS first unless turned off, then log in."""
    if notify.smtp_host is None or notify.smtp_from is None:
        raise NotDelivered("e-mail: notify.smtp_host and notify.smtp_from are not set")
    password = (
        _read(notify.smtp_password_file, "notify.smtp_password_file") if notify.smtp_user else None
    )
    mail = message.email(notification, sender=notify.smtp_from, site_zone=site_zone, now=now)
    where = f"mail server {notify.smtp_host}:{notify.smtp_port}"
    timeout = notify.timeout.total_seconds()
    try:
        with smtplib.SMTP(notify.smtp_host, notify.smtp_port, timeout=timeout) as smtp:
            smtp.ehlo()
            if notify.smtp_starttls:
                if not smtp.has_extn("starttls"):
                    raise NotDelivered(f"{where} does not offer STARTTLS (notify.smtp_starttls)")
                cafile = None if notify.smtp_ca_file is None else str(notify.smtp_ca_file)
                smtp.starttls(context=ssl.create_default_context(cafile=cafile))
                smtp.ehlo()
            if notify.smtp_user and password is not None:
                smtp.login(notify.smtp_user, password)
            smtp.send_message(mail)
    except NotDelivered:
        raise
    except smtplib.SMTPAuthenticationError as err:
        raise NotDelivered(
            f"{where} refused the login of notify.smtp_user ({err.smtp_code})"
        ) from err
    except smtplib.SMTPRecipientsRefused as err:
        codes = sorted({code for code, _text in err.recipients.values()})
        raise NotDelivered(f"{where} refused the host's address ({_codes(codes)})") from err
    except smtplib.SMTPSenderRefused as err:
        raise NotDelivered(f"{where} refused notify.smtp_from ({err.smtp_code})") from err
    except smtplib.SMTPResponseException as err:
        raise NotDelivered(f"{where} answered {err.smtp_code}") from err
    except smtplib.SMTPServerDisconnected as err:
        raise NotDelivered(f"{where} closed the connection") from err
    except smtplib.SMTPException as err:
        raise NotDelivered(f"{where}: {type(err).__name__}") from err
    except OSError as err:
        raise NotDelivered(_network(where, err, notify)) from err


def _codes(codes: list[int]) -> str:
    return ", ".join(str(code) for code in codes) or "no code"


# --- webhooks ------------------------------------------------------------------------------------


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer like any other: not followed (it would turn the POST into a GET)."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


def post_webhook(notification: Claimed, notify: Notify, *, clock: Callable[[], datetime]) -> None:
    """POST the signed JSON document to the host's webhook; anything but 2xx is a failure."""
    if notify.webhook_secret_file is None:
        raise NotDelivered("webhook: notify.webhook_secret_file is not set; webhooks are signed")
    secret = message.check_secret(_read(notify.webhook_secret_file, "notify.webhook_secret_file"))
    parts = urlsplit(notification.address)
    where = f"webhook {parts.scheme}://{parts.netloc.rpartition('@')[2]}"
    body = message.webhook_body(notification)
    headers = message.webhook_headers(notification, body, secret=secret, at=clock())
    request = urllib.request.Request(
        notification.address, data=body, headers=headers, method="POST"
    )
    try:
        with _OPENER.open(request, timeout=notify.timeout.total_seconds()) as response:
            response.read(64 * 1024)
    except urllib.error.HTTPError as err:
        err.close()
        raise NotDelivered(f"{where} answered HTTP {err.code}") from err
    except urllib.error.URLError as err:
        reason = err.reason
        if isinstance(reason, OSError):
            raise NotDelivered(_network(where, reason, notify)) from err
        raise NotDelivered(f"{where} unreachable ({reason})") from err
    except OSError as err:
        raise NotDelivered(_network(where, err, notify)) from err


# --- shared --------------------------------------------------------------------------------------


def _network(where: str, err: OSError, notify: Notify) -> str:
    """A network failure in a few words."""
    if isinstance(err, TimeoutError | socket.timeout):
        return f"{where} did not answer within {format_duration(notify.timeout)}"
    if isinstance(err, ConnectionRefusedError):
        return f"{where} refused the connection"
    if isinstance(err, ssl.SSLCertVerificationError):
        return f"{where}: its TLS certificate was refused ({err.verify_message})"
    if isinstance(err, ssl.SSLError):
        return f"{where}: TLS failed ({err.reason or err})"
    if isinstance(err, socket.gaierror):
        return f"{where}: the name does not resolve ({err.strerror})"
    return f"{where} unreachable ({err.strerror or type(err).__name__})"


def _read(path: Path | None, key: str) -> str:
    """A secret from its file (the first line); NotDelivered naming the setting."""
    if path is None:
        raise NotDelivered(f"{key} is not set")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise NotDelivered(f"{key} {path} cannot be read ({err.strerror or err})") from err
    lines = text.splitlines()
    secret = lines[0].strip() if lines else ""
    if not secret:
        raise NotDelivered(f"{key} {path} is empty")
    return secret
