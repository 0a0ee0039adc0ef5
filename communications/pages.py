"""The inbox pages: the shell at /inbox/ and the JSON the page's modules call under it.

The page renders rows and messages from the same JSON shapes the API and the realtime events
use (communications/serializers.py), so a patch from an event and a fresh fetch look alike.
"""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.db.models import Max, Q
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST
from rest_framework.exceptions import ValidationError

from crm.models import Label, Team

from .access import access_conversation_by_id, can_see_channel, visible_channel_ids
from .counts import inbox_counts as count_conversations
from .files import store_after_commit
from .models import Attachment, Channel, Message, RealtimeEvent
from .saved_views import services as saved_views
from .selectors import (
    conversation_page,
    conversation_with_card,
    filtered_conversations,
    message_page,
    unread_mention_count,
)
from .serializers import (
    ChannelSerializer,
    ConversationDetailSerializer,
    MessageSerializer,
    conversation_row_payload,
    label_payload,
    message_row_payload,
)
from .services.attachments import request_download_retry
from .services.canned import team_choices
from .services.send import SendRejected, send_message

MAX_UPLOAD_BYTES = getattr(settings, "INBOX_MAX_UPLOAD_BYTES", 25 * 1024 * 1024)
LIST_FILTERS = ("status", "channel", "assignee", "team", "unread", "q", "label")


@require_GET
@login_required
def inbox(request):
    """The three-pane shell with its first list page, so the page needs no second request."""
    # Taken before the list is read: anything after it is replayed when the socket connects.
    last_event_id = RealtimeEvent.objects.aggregate(latest=Max("id"))["latest"] or 0
    params = {k: request.GET[k] for k in LIST_FILTERS if request.GET.get(k)}
    try:
        page = conversation_page(request.user, params)
    except ValidationError:
        params = {}
        page = conversation_page(request.user, params)
    user = request.user
    views = list(saved_views.views_for(user))
    bootstrap = {
        "user": {
            "id": user.pk,
            "name": user.get_full_name() or user.get_username(),
            "username": user.get_username(),
        },
        "last_event_id": last_event_id,
        "filters": params,
        "conversations": [conversation_row_payload(row) for row in page.items],
        "next_cursor": page.next_cursor,
        "channels": ChannelSerializer(_visible_channels(user), many=True).data,
        "managers": _assignable_managers(user),
        "teams": list(_visible_teams(user).values("id", "name")),
        "counts": inbox_counts(user, views),
        "views": [saved_views.view_payload(view, user) for view in views],
        "max_upload_bytes": MAX_UPLOAD_BYTES,
        "labels": [label_payload(label) for label in Label.objects.all()],
        "mentions_unread": unread_mention_count(user),
        "my_teams": list(team_choices(user).order_by("name").values("id", "name")),
    }
    return render(request, "communications/inbox.html", {"bootstrap": bootstrap})


@require_GET
@login_required
def conversation_open(request, conversation_id: int):
    """Thread header, customer card with orders and the newest page of messages, together."""
    conversation = conversation_with_card(conversation_id, request.user)
    try:
        page = message_page(conversation.pk, request.GET)
    except ValidationError as exc:  # a bad before / around / after names itself
        return JsonResponse(exc.detail, status=400)
    return JsonResponse(
        {
            "conversation": ConversationDetailSerializer(conversation).data,
            "messages": [message_row_payload(row) for row in page.items],
            "next_cursor": page.next_cursor,
            "newer_cursor": page.newer_cursor,
        }
    )


@require_GET
@login_required
def counts(request):
    return JsonResponse(inbox_counts(request.user))


@require_POST
@login_required
def upload(request, conversation_id: int):
    """Store an uploaded file as an attachment of a new outbound message (or note).

    The file is written once the message is committed, before its event is broadcast and its
    delivery queued (communications/files.py): nobody hears of the message before its file
    can be served, and a send that rolls back leaves no file behind.
    """
    conversation = access_conversation_by_id(request.user, conversation_id)
    uploaded = request.FILES.get("file")
    client_id = (request.POST.get("client_id") or "").strip()
    if uploaded is None or not client_id or len(client_id) > 64:
        return JsonResponse({"detail": "send a file and a client_id"}, status=400)
    if uploaded.size > MAX_UPLOAD_BYTES:
        limit = MAX_UPLOAD_BYTES // (1024 * 1024)
        return JsonResponse(
            {"detail": f"{uploaded.name} is larger than the {limit} MB limit"}, status=413
        )
    mime_type = uploaded.content_type or "application/octet-stream"
    attachment = Attachment(filename=uploaded.name[:255], mime_type=mime_type, size=uploaded.size)
    is_note = request.POST.get("kind") == Message.Kind.NOTE
    try:
        with transaction.atomic():
            store_after_commit(attachment, uploaded, uploaded.name)
            outcome = send_message(
                conversation=conversation,
                user=request.user,
                client_id=client_id,
                content=request.POST.get("content", "")[:20000],
                kind=Message.Kind.NOTE if is_note else _kind_for(mime_type),
                attachments=(attachment,),
            )
    except SendRejected as exc:
        return JsonResponse({"detail": str(exc)}, status=400)
    return JsonResponse(
        MessageSerializer(outcome.message).data, status=201 if outcome.created else 200
    )


@require_POST
@login_required
def retry_download(request, attachment_id: int):
    """The placeholder's retry button: fetch the media again now. The attachment fills in
    through a `message.updated` event when the bytes arrive."""
    attachment = Attachment.objects.select_related("message").filter(pk=attachment_id).first()
    if attachment is None or not can_see_channel(request.user, attachment.message.channel_id):
        return JsonResponse({"detail": "attachment not found"}, status=404)
    if attachment.download_state != Attachment.DownloadState.FAILED:
        return JsonResponse({"detail": "this attachment is already downloaded"}, status=409)
    request_download_retry(attachment)
    return JsonResponse({"queued": True}, status=202)


def inbox_counts(user, views=None) -> dict:
    """The numbers beside the list's filters and the user's saved views (read here unless
    given), in one query (communications/counts.py), with the event id they are as of: the
    page moves them with later events' deltas."""
    if views is None:
        views = list(saved_views.views_for(user))
    conditions = saved_views.view_counts_conditions(user, views)
    counted = count_conversations(filtered_conversations(user, {}), user.pk, conditions)
    counted.setdefault("views", {})
    return counted


def _kind_for(mime_type: str) -> str:
    major = mime_type.split("/", 1)[0]
    return {
        "image": Message.Kind.IMAGE,
        "video": Message.Kind.VIDEO,
        "audio": Message.Kind.AUDIO,
    }.get(major, Message.Kind.FILE)


def _visible_channels(user):
    ids = visible_channel_ids(user)
    channels = Channel.objects.order_by("name")
    return channels if ids is None else channels.filter(pk__in=ids)


def _visible_teams(user):
    ids = visible_channel_ids(user)
    teams = Team.objects.order_by("name")
    return teams if ids is None else teams.filter(channels__in=ids).distinct()


def _assignable_managers(user) -> list[dict]:
    """Who a conversation can be assigned to: the members of the teams the user works with."""
    ids = visible_channel_ids(user)
    users = get_user_model().objects.filter(is_active=True)
    if ids is None:
        users = users.filter(Q(teams__isnull=False) | Q(is_superuser=True))
    else:
        users = users.filter(teams__channels__in=ids)
    rows = users.distinct().order_by("first_name", "username")
    return [{"id": u.pk, "name": u.get_full_name() or u.get_username()} for u in rows]
