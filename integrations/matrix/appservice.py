"""The appservice endpoint Synapse pushes to: PUT .../_matrix/app/v1/transactions/<txnId>.

Synapse re-sends a transaction until it gets a 200, so a txn already processed answers 200 at
once; a txn is marked processed only after all its events went through the mapper (a crash
half-way means Synapse sends it again and the event-id dedup absorbs the repeats).
"""

import hashlib
import hmac
import logging

from django.db import IntegrityError, transaction
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from crm.safe_json import JSONRejected, load_json

from . import mapper
from .client import MatrixUnavailable
from .models import ProcessedTransaction
from .schema import transaction_shape_error
from .settings_cache import get_config

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
        return refused
    key = transaction_key(txn_id, request.body)
    if ProcessedTransaction.objects.filter(txn_id=key).exists():
        return JsonResponse({})
    try:
        body = load_json(request.body or b"{}")
    except JSONRejected as exc:
        return _error(400, "M_BAD_JSON", str(exc))
    # The whole transaction is checked before any event is used: a bad one stores nothing.
    problem = transaction_shape_error(body)
    if problem:
        return _error(400, "M_BAD_JSON", f"not an appservice transaction: {problem}")
    events = body.get("events") or []
    ephemeral = body.get("ephemeral") or body.get("de.sorunome.msc2409.ephemeral") or []
    try:
        mapper.handle_events(events, source="appservice")
        mapper.handle_ephemeral(ephemeral)
    except MatrixUnavailable as exc:
        # We could not fetch media or room state: have Synapse send the txn again later.
        logger.warning("appservice txn %s deferred: %s", txn_id, exc)
        return _error(503, "M_UNKNOWN", f"try again: {exc}")
    try:
        with transaction.atomic():
            ProcessedTransaction.objects.create(
                txn_id=key, event_count=len(events) + len(ephemeral)
            )
    except IntegrityError:
        pass  # processed concurrently
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
