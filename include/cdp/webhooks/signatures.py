"""HMAC signatures, checked over the exact bytes received and compared in constant time.

Typeform (documented, https://www.typeform.com/developers/webhooks/secure-your-webhooks/): header
``Typeform-Signature: sha256=<base64 of HMAC-SHA256(secret, body)>``; no signed timestamp.

Zigpoll and our registration form (ASSUMED: Zigpoll documents no signature scheme we could check, and the
registration form is ours to define): the timestamped scheme Stripe and others use, header
``X-Zigpoll-Signature`` / ``X-Registration-Signature`` with ``t=<unix seconds>,v1=<hex of
HMAC-SHA256(secret, "<t>.<body>")>``, so the timestamp is covered by the signature.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping

HEADERS = {
    "typeform": "typeform-signature",
    "zigpoll": "x-zigpoll-signature",
    "registration": "x-registration-signature",
}


class SignatureError(ValueError):
    """Missing, malformed or wrong signature."""


def typeform_signature(secret: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return "sha256=" + base64.b64encode(digest).decode()


def timestamped_signature(secret: str, body: bytes, timestamp: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def sign(source: str, secret: str, body: bytes, timestamp: int) -> dict[str, str]:
    """The headers a sender would add (for tests, the sandbox and the benchmark)."""
    if source == "typeform":
        return {"Typeform-Signature": typeform_signature(secret, body)}
    return {HEADERS[source].title(): timestamped_signature(secret, body, timestamp)}


def verify(source: str, secret: str, headers: Mapping[str, str], body: bytes) -> int | None:
    """Check the signature; return the signed timestamp (None for Typeform, which signs none)."""
    header = headers.get(HEADERS[source])
    if not header:
        raise SignatureError(f"missing {HEADERS[source]} header")
    if source == "typeform":
        if not hmac.compare_digest(header.strip().encode(), typeform_signature(secret, body).encode()):
            raise SignatureError("signature does not match the body")
        return None
    parts = dict(part.strip().partition("=")[::2] for part in header.split(","))
    try:
        timestamp = int(parts["t"])
        given = parts["v1"]
    except (KeyError, ValueError) as error:
        raise SignatureError("signature header is not t=<seconds>,v1=<hex>") from error
    expected = timestamped_signature(secret, body, timestamp).rpartition("v1=")[2]
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise SignatureError("signature does not match the body")
    return timestamp
