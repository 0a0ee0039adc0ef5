"""The appservice endpoint Synapse pushes to: PUT .../_matrix/app/v1/transactions/<txnId>.

It does the least that makes a transaction safe, like every webhook: checks the hs_token and
the transaction's shape, stores it as ONE delivery in the webhook log (communications/
webhooks.py; source "matrix", no channel — a transaction carries every number's events) and
answers 200 once that is committed. The worker maps its events (webhook.py). Synapse re-sends a
transaction until it gets a 200: a re-send has the same key and is logged as a duplicate.
"""

import hashlib
import hmac
import logging

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from communications import webhooks
from communications.models import WebhookDelivery

from .settings_cache import get_config
from .webhook import SOURCE, parse_transaction

logger = logging.getLogger(__name__)


def _error(status: int, errcode: str, error: str) -> JsonResponse:
    return JsonResponse({"errcode": errcode, "error": error}, status=status)


def _token(request: HttpRequest) -> str:
    auth = request.headers.get("Authorization", "")
    if auth.startswith("Bearer "):
        return auth[len("Bearer ") :]
    return request.GET.get("access_token", "")  # older Synapse versions


def check_hs_token(request: HttpRequest) -> JsonResponse | None:
    config = get_config()
    if not config.configured or not config.hs_token:
        return _error(
            503,
            "M_UNKNOWN",
            "Switchboard's Matrix integration is not configured yet (homeserver URL, server "
            "name, as_token/hs_token): see admin → Matrix settings or `manage.py matrix_settings`",
        )
    token = _token(request)
    if not token:
        return _error(401, "M_MISSING_TOKEN", "missing hs_token")
    if not hmac.compare_digest(token.encode(), config.hs_token.encode()):
        return _error(403, "M_FORBIDDEN", "bad hs_token")
    return None


def transaction_key(txn_id: str, body: bytes) -> str:
    """A txn id alone is not unique over time: Synapse on SQLite numbers appservice txns from 1
    again after a restart. The id plus a digest of the body is: a true re-send is identical."""
    return f"{txn_id}:{hashlib.sha256(body).hexdigest()[:32]}"


@csrf_exempt
@require_http_methods(["PUT"])
def transaction_view(request: HttpRequest, txn_id: str) -> JsonResponse:
    refused = check_hs_token(request)
    if refused is not None:
        return refused  # nothing stored: anyone can knock
    body = request.body
    receiver = webhooks.receiver_for(SOURCE)
    headers = webhooks.kept_headers(receiver, request)
    try:
        # The whole transaction is checked before any event is used: a bad one stores nothing
        # but its log row, for staff to read.
        parse_transaction(body)
    except webhooks.Malformed as malformed:
        webhooks.log_rejected(
            None, SOURCE, headers, body, WebhookDelivery.Verdict.MALFORMED, malformed.reason
        )
        return _error(400, "M_BAD_JSON", malformed.reason)
    delivery_id, duplicate = webhooks.log_accepted(
        None, SOURCE, headers, body, transaction_key(txn_id, body)
    )
    if not duplicate:
        webhooks.accepted(delivery_id)
    return JsonResponse({})


@csrf_exempt
@require_http_methods(["POST"])
def ping_view(request: HttpRequest) -> JsonResponse:
    refused = check_hs_token(request)
    return refused or JsonResponse({})


@csrf_exempt
def user_query_view(request: HttpRequest, user_id: str) -> JsonResponse:
    refused = check_hs_token(request)
    return refused or _error(404, "M_NOT_FOUND", "unknown user")


@csrf_exempt
def room_query_view(request: HttpRequest, alias: str) -> JsonResponse:
    refused = check_hs_token(request)
    return refused or _error(404, "M_NOT_FOUND", "unknown alias")
