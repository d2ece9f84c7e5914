"""What hosts are told through, run for real on loopback: a mail server and a webhook receiver.

`mail_server` is aiosmtpd with STARTTLS required before AUTH and AUTH required before mail, under a
throwaway certificate authority made with `cryptography` (`certificates`); it keeps each message
with whether it came over TLS and who logged in. `webhook_receiver` is a stdlib HTTP server that
checks each POST's Standard Webhooks signature itself (HMAC-SHA256 over `id.timestamp.body`) and
answers 204, or 401 for a bad one. `silent_server` accepts connections and never says a word: a
mail server that is down in the way that hurts most.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.services import free_port

SMTP_USER = "reception"
SMTP_PASSWORD = "mail password 7"
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"a shared secret of 32 bytes long").decode()


@dataclass(frozen=True)
class Certificates:
    """A throwaway CA and a server certificate for 127.0.0.1 signed by it."""

    ca: Path
    cert: Path
    key: Path


def certificates(folder: Path) -> Certificates:
    """Make a CA and a certificate for 127.0.0.1 and localhost in `folder`."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "facility test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    found = Certificates(folder / "ca.pem", folder / "server.pem", folder / "server.key")
    found.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    found.cert.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    found.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return found


@dataclass
class Mail:
    """One message the mail server took, and how it came."""

    message: EmailMessage
    sender: str
    recipients: list[str]
    tls: bool
    login: str | None


@dataclass
class MailServer:
    """A running mail server: its port, what it took, and whom it let in."""

    port: int
    received: list[Mail] = field(default_factory=list)
    logins: list[tuple[str, bool]] = field(default_factory=list)  # (user, accepted)
    arrived: threading.Event = field(default_factory=threading.Event)

    def wait(self, count: int = 1, timeout: float = 20) -> list[Mail]:
        deadline = datetime.now(UTC) + timedelta(seconds=timeout)
        while len(self.received) < count and datetime.now(UTC) < deadline:
            self.arrived.wait(0.1)
            self.arrived.clear()
        assert len(self.received) >= count, f"{len(self.received)} mail(s) arrived, not {count}"
        return self.received


class _Handler:
    def __init__(self, server: MailServer) -> None:
        self.server = server

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        login = session.auth_data.login.decode() if session.authenticated else None
        self.server.received.append(
            Mail(
                message=message_from_bytes(envelope.content, policy=policy.default),  # type: ignore[arg-type]
                sender=envelope.mail_from,
                recipients=list(envelope.rcpt_tos),
                tls=session.ssl is not None,
                login=login,
            )
        )
        self.server.arrived.set()
        return "250 OK"


@contextmanager
def mail_server(certs: Certificates, *, port: int | None = None) -> Iterator[MailServer]:
    """aiosmtpd on 127.0.0.1: STARTTLS required, then AUTH (SMTP_USER, SMTP_PASSWORD)."""
    found = MailServer(port or free_port())
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certs.cert, certs.key)

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any):
        ok = (
            isinstance(data, LoginPassword)
            and data.login == SMTP_USER.encode()
            and data.password == SMTP_PASSWORD.encode()
        )
        found.logins.append((data.login.decode() if isinstance(data, LoginPassword) else "", ok))
        return AuthResult(success=ok, handled=False, auth_data=data if ok else None)

    controller = Controller(
        _Handler(found),
        hostname="127.0.0.1",
        port=found.port,
        tls_context=context,
        require_starttls=True,
        auth_required=True,
        authenticator=authenticate,
    )
    controller.start()
    try:
        yield found
    finally:
        controller.stop()


@contextmanager
def silent_server() -> Iterator[int]:
    """A port that accepts connections (the kernel completes them) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield sock.getsockname()[1]


@dataclass
class Delivery:
    """One POST the webhook receiver took."""

    headers: dict[str, str]
    body: bytes
    valid: bool

    def document(self) -> dict:
        return json.loads(self.body)


def signature_valid(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """The Standard Webhooks check, written out: HMAC-SHA256 of `id.timestamp.body`, base64."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    fresh = abs(datetime.now(UTC).timestamp() - int(headers["webhook-timestamp"])) < 300
    offered = headers.get("webhook-signature", "").split()
    return fresh and any(hmac.compare_digest(expected, s) for s in offered)


@dataclass
class WebhookReceiver:
    """A running receiver: where to POST, and what came."""

    url: str
    deliveries: list[Delivery] = field(default_factory=list)


@contextmanager
def webhook_receiver(secret: str = WEBHOOK_SECRET) -> Iterator[WebhookReceiver]:
    """An HTTP server on 127.0.0.1 that checks every POST's signature: 204 if good, else 401."""
    found = WebhookReceiver("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                valid = signature_valid(secret, headers, body)
            except (KeyError, ValueError):
                valid = False
            found.deliveries.append(Delivery(headers, body, valid))
            self.send_response(204 if valid else 401)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    found.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/reception?token=t0p"
    thread = threading.Thread(target=server.serve_forever, name="webhook-receiver", daemon=True)
    thread.start()
    try:
        yield found
    finally:
        server.shutdown()
        server.server_close()
