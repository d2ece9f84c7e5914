"""What a host is told, as an e-mail and as a signed webhook: the visitor's name, company, time.

Pure: no network, no clock. Webhooks follow the Standard Webhooks scheme (`webhook-id`,
`webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256 of id.timestamp.body>`), signed
by the `standardwebhooks` library, so a receiver can check them with that project's library in
its own language, or with a few lines of HMAC.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime, tzinfo
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from standardwebhooks.webhooks import Webhook

from facility.errors import NotDelivered
from facility.notify.outbox import Claimed
from facility.timefmt import site_text, utc_text

EVENT = "visitor.signed_in"
SECRET_PREFIX = "whsec_"
SHORTEST_SECRET = 16  # bytes: shorter is guessable


def who(notification: Claimed) -> str:
    """`Ada Lovelace (Analytical Engines)`, or the name alone."""
    if notification.company:
        return f"{notification.visitor} ({notification.company})"
    return notification.visitor


def email(notification: Claimed, *, sender: str, site_zone: tzinfo, now: datetime) -> EmailMessage:
    """The e-mail to the host."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = notification.address
    message["Subject"] = f"Your visitor has arrived: {who(notification)}"
    message["Date"] = format_datetime(now)
    domain = sender.rpartition("@")[2] or None
    message["Message-ID"] = make_msgid(idstring=notification.message_id, domain=domain)
    when = site_text(notification.signed_in_at, site_zone)
    message.set_content(f"{who(notification)} signed in at reception at {when}.\n")
    return message


def webhook_body(notification: Claimed) -> bytes:
    """The JSON document a webhook receives."""
    document = {
        "type": EVENT,
        "timestamp": utc_text(notification.signed_in_at),
        "data": {
            "name": notification.visitor,
            "company": notification.company,
            "signed_in_at": utc_text(notification.signed_in_at),
        },
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def webhook_headers(
    notification: Claimed, body: bytes, *, secret: str, at: datetime
) -> dict[str, str]:
    """The request's headers, signed at `at` (the moment it is sent)."""
    signature = Webhook(secret).sign(notification.message_id, at, body)
    return {
        "Content-Type": "application/json",
        "User-Agent": "facility",
        "webhook-id": notification.message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
    }


def check_secret(text: str) -> str:
    """The webhook secret as the file holds it (`whsec_` + base64); NotDelivered saying what is wrong."""
    secret = text.strip()
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        raw = base64.b64decode(encoded + "==", validate=False)
        valid = bool(encoded) and base64.b64encode(raw).decode().rstrip("=") == encoded.rstrip("=")
    except (binascii.Error, ValueError):
        valid = False
    if not valid:
        raise NotDelivered(
            "notify.webhook_secret_file does not hold a secret: write whsec_ followed by base64, "
            "e.g. printf 'whsec_%s\\n' \"$(openssl rand -base64 32)\""
        )
    if len(raw) < SHORTEST_SECRET:
        raise NotDelivered(
            f"notify.webhook_secret_file: the secret is {len(raw)} bytes; give at least "
            f"{SHORTEST_SECRET}"
        )
    return secret
