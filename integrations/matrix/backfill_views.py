"""The backfill API: start a room's history import, then poll its progress.

POST /integrations/whatsapp/rooms/<conversation_id>/backfill/ → 202 {"job_id", "status_url"}
(409 {"error", "job_id", "status_url", "status"} while a job of that room is queued or running);
GET /integrations/whatsapp/backfill/<job_id>/ → the job's progress (backfill.job_payload).
Token or session auth. Allowed: a user who can see the conversation (a superuser sees every
one; `is_staff` alone grants nothing here); anyone else gets 404 (ids don't leak).
"""

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.decorators import api_view
from rest_framework.response import Response

from communications.access import access_conversation_by_id
from communications.api.schema import errors
from communications.models import Conversation

from . import backfill
from .models import BackfillJob, MatrixRoom


def _conversation(user, conversation_id: int) -> Conversation:
    return access_conversation_by_id(user, conversation_id)


@extend_schema(
    request=None,
    responses={
        202: OpenApiTypes.OBJECT,
        400: OpenApiResponse(OpenApiTypes.OBJECT, description="not a WhatsApp chat through Matrix"),
        409: OpenApiResponse(OpenApiTypes.OBJECT, description="a backfill of this room is running"),
        **errors(404),
    },
    summary="Start a history backfill of a WhatsApp (Matrix) conversation",
)
@api_view(["POST"])
def start_backfill(request, conversation_id: int):
    conversation = _conversation(request.user, conversation_id)
    room = (
        MatrixRoom.objects.select_related("connection")
        .filter(room_id=conversation.external_id, kind=MatrixRoom.Kind.PORTAL)
        .first()
    )
    if room is None or conversation.channel.kind != "whatsapp":
        return Response({"error": "this conversation is not a WhatsApp chat through Matrix"}, 400)
    try:
        job = backfill.request_backfill(room, request.user)
    except backfill.BackfillBusy as busy:
        return Response(
            {
                "error": f"a backfill of this room is already {busy.job.state}",
                "job_id": busy.job.pk,
                "status": busy.job.state,
                "status_url": backfill.status_url(busy.job),
            },
            status=409,
        )
    return Response({"job_id": job.pk, "status_url": backfill.status_url(job)}, status=202)


@extend_schema(
    responses={200: OpenApiTypes.OBJECT, **errors(404)}, summary="Progress of a history backfill"
)
@api_view(["GET"])
def backfill_status(request, job_id: int):
    job = BackfillJob.objects.select_related("room", "requested_by").filter(pk=job_id).first()
    if job is None:
        raise Http404("job not found")
    if not request.user.is_superuser:
        if job.conversation_id is None:
            raise Http404("job not found")
        access_conversation_by_id(request.user, job.conversation_id)
    job.refresh_from_db()
    return Response(backfill.job_payload(job))
