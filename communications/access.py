"""Who may see what. Views fetch conversations only through these functions.

A manager sees the conversations of the channels their teams are attached to; a superuser sees
everything. Anything else is reported as not found, never as forbidden, so ids don't leak.
"""

from django.db.models import QuerySet
from django.http import Http404

from . import query_templates
from .counts import with_label_ids
from .models import Channel, Conversation, Message


def visible_channel_ids(user) -> list[int] | None:
    """Channel ids the user may see, or None for "all" (superusers)."""
    if not user.is_authenticated or not user.is_active:
        return []
    if user.is_superuser:
        return None
    cached = getattr(user, "_switchboard_channel_ids", None)
    if cached is None:
        cached = list(
            Channel.objects.filter(teams__members=user).values_list("id", flat=True).distinct()
        )
        user._switchboard_channel_ids = cached
    return cached


def remember_visible_channel_ids(user, channel_ids: list[int]) -> None:
    """What visible_channel_ids would read, already read with the user (user_rows.py)."""
    user._switchboard_channel_ids = list(channel_ids)


def conversations_for(user) -> QuerySet[Conversation]:
    return conversations_in(visible_channel_ids(user))


def conversations_in(channel_ids: list[int] | None) -> QuerySet[Conversation]:
    """The conversations of these channels; None: of every channel (visible_channel_ids)."""
    queryset = Conversation.objects.all()
    if channel_ids is not None:
        queryset = queryset.filter(channel_id__in=channel_ids)
    return queryset


def access_conversation_by_id(user, conversation_id: int, *, for_update: bool = False):
    queryset = (
        conversations_for(user)
        .select_related("contact", "channel", "assignee")
        .defer("channel__secrets")  # decrypting per row costs ~50 µs and views never need it
    )
    if for_update:  # a writer: its label ids too, for the saved views' counts (counts.py)
        queryset = with_label_ids(queryset.select_for_update(of=("self",)))
    try:
        return queryset.get(pk=conversation_id)
    except (Conversation.DoesNotExist, ValueError, TypeError):
        raise Http404("conversation not found") from None


def access_conversations_by_ids(
    user, conversation_ids: list[int], *, for_update: bool = False
) -> tuple[list[Conversation], list[int]]:
    """The conversations of `conversation_ids` the user may see (in id order, row-locked with
    `for_update`), and the ids that are missing or not visible to them."""
    queryset = (
        conversations_for(user)
        .select_related("contact", "channel", "assignee")
        .defer("channel__secrets")
        .filter(pk__in=conversation_ids)
        .order_by("id")
    )
    if for_update:  # writers: their label ids too, for the saved views' counts (counts.py)
        queryset = with_label_ids(queryset.select_for_update(of=("self",)))
    found = list(queryset)
    known = {conversation.pk for conversation in found}
    return found, [i for i in dict.fromkeys(conversation_ids) if i not in known]


def access_conversation_id(user, conversation_id) -> int:
    """The id of a conversation the user may see, checked in one query that reads no row
    (the user's channels as a subquery, unless already known); Http404 otherwise. For reads that
    need the id only, such as a page of the thread."""
    try:
        conversation_id = int(conversation_id)
    except (ValueError, TypeError):
        raise Http404("conversation not found") from None
    if not user.is_authenticated or not user.is_active:
        raise Http404("conversation not found")
    values = {"conversation": conversation_id}
    if not user.is_superuser:
        known = getattr(user, "_switchboard_channel_ids", None)
        if known is not None:
            values["channels"] = known
        else:
            values["user"] = user.pk
    if not query_templates.rows(("access_conversation_id",), _visible_conversation_id, values):
        raise Http404("conversation not found")
    return conversation_id


def _visible_conversation_id(values: dict):
    queryset = Conversation.objects.filter(pk=values["conversation"])
    if "channels" in values:
        queryset = queryset.filter(channel_id__in=values["channels"])
    elif "user" in values:
        # The same rule as visible_channel_ids, as a subquery on the channel-team links:
        # planned in ~0.3 ms, where joining channel, links and members takes ~0.9 ms.
        links = Channel.teams.through.objects.filter(team__members=values["user"])
        queryset = queryset.filter(channel_id__in=links.values("channel_id"))
    return queryset.values("id")[:1]


def access_message_by_id(user, message_id: int) -> Message:
    ids = visible_channel_ids(user)
    queryset = Message.objects.select_related("conversation")
    if ids is not None:
        queryset = queryset.filter(channel_id__in=ids)
    try:
        return queryset.get(pk=message_id)
    except (Message.DoesNotExist, ValueError, TypeError):
        raise Http404("message not found") from None


def can_see_channel(user, channel_id: int) -> bool:
    ids = visible_channel_ids(user)
    return ids is None or channel_id in ids


def contacts_for(user):
    """The contacts the user may see: a superuser all of them, a manager those with a
    conversation on one of their channels (an EXISTS on the conversations' contact index, so a
    contact with many conversations is listed once)."""
    from django.db.models import Exists, OuterRef

    from crm.models import Contact

    ids = visible_channel_ids(user)
    if ids is None:
        return Contact.objects.all()
    return Contact.objects.filter(
        Exists(Conversation.objects.filter(contact_id=OuterRef("pk"), channel_id__in=ids))
    )


def access_contact_by_id(user, contact_id, *, for_update: bool = False):
    """A contact the user may see, else Http404 (a foreign contact is "not found")."""
    queryset = contacts_for(user)
    if for_update:
        queryset = queryset.select_for_update(of=("self",))
    try:
        return queryset.get(pk=contact_id)
    except (queryset.model.DoesNotExist, ValueError, TypeError):
        raise Http404("contact not found") from None
