"""What every Meta webhook shares (WhatsApp Cloud API, Messenger, Instagram): the
`X-Hub-Signature-256` HMAC over the raw body, and the GET subscription challenge.

Both are compared in constant time. The signature is computed over the bytes as received:
re-serialised JSON would not match.
"""

import hashlib
import hmac

from django.http import HttpResponse

SIGNATURE_HEADER = "X-Hub-Signature-256"


def signature_for(app_secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def signature_is_valid(app_secret: str, body: bytes, header: str) -> bool:
    if not app_secret or not header:
        return False
    return hmac.compare_digest(header.strip().encode(), signature_for(app_secret, body).encode())


def answer_challenge(request, verify_token: str) -> HttpResponse:
    """Meta's subscription check: `hub.challenge` back as plain text, only when `hub.mode` is
    subscribe and `hub.verify_token` is the channel's (Chatwoot once ignored the token)."""
    given = request.GET.get("hub.verify_token", "")
    if (
        request.GET.get("hub.mode") == "subscribe"
        and verify_token
        and hmac.compare_digest(given.encode(), verify_token.encode())
    ):
        return HttpResponse(request.GET.get("hub.challenge", ""), content_type="text/plain")
    return HttpResponse("verification failed", status=403, content_type="text/plain")
