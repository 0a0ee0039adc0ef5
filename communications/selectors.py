"""Reads for the inbox list and threads: fixed query counts, keyset pages, no counts."""

from dataclasses import dataclass

from django.contrib.postgres.aggregates import JSONBAgg
from django.db import connection
from django.db.models import Aggregate, F, JSONField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import JSONObject
from django.http import Http404
from rest_framework.exceptions import ValidationError

from crm.models import Contact, ContactLabel, CustomAttributeDefinition, Label, Order

from . import query_templates
from .access import contacts_for, conversations_for, conversations_in, visible_channel_ids
from .api.params import (
    bool_param,
    decode_cursor,
    encode_cursor,
    page_size,
    parse_date_param,
    text_param,
)
from .models import Activity, Attachment, Conversation, ConversationLabel, Mention, Message
from .serializers import (
    ACTIVITY_COLUMNS,
    ATTACHMENT_COLUMNS,
    ATTRIBUTE_DEFINITION_COLUMNS,
    CHANNEL_COLUMNS,
    CONTACT_COLUMNS,
    CONVERSATION_COLUMNS,
    MESSAGE_COLUMNS,
    _time,
    display_name,
)


@dataclass(frozen=True)
class Page:
    items: list
    next_cursor: str | None
    # Only for a thread page opened `around` a message (or read `after` a cursor): the cursor
    # of the newest message returned while newer ones exist.
    newer_cursor: str | None = None


def filtered_conversations(
    user, params, *, all_history: bool = False, text_search: bool = True
) -> QuerySet[Conversation]:
    """The inbox list's filters, validated (a bad value is a 400 naming the parameter).

    `all_history` (search): archived conversations count too unless `archived` is given;
    `text_search=False`: `q` is the caller's to apply (search)."""
    return conversations_matching(
        *list_query(user, params, all_history=all_history, text_search=text_search)
    )


def list_query(
    user, params, *, all_history: bool = False, text_search: bool = True
) -> tuple[dict, dict]:
    """The list's filters, validated, as the query's shape (what decides its SQL text) and its
    values (ids and dates; the search text, which query_templates never fills in)."""
    shape, values = {}, {}
    channel_ids = visible_channel_ids(user)
    if channel_ids is None:
        shape["all_channels"] = True
    else:
        values["visible_channels"] = channel_ids
    if all_history and params.get("archived") in (None, ""):
        shape["archived"] = None
    else:
        shape["archived"] = bool_param(params, "archived")
    filter_shape, filter_values = _filter_parts(user, params)
    shape |= filter_shape
    values |= filter_values
    search = text_param(params, "q").strip() if text_search else ""
    if search:
        values["search"] = search
    since = parse_date_param(params, "from_date", "fromDate")
    until = parse_date_param(params, "to_date", "toDate", end_of_day=True)
    if since:
        values["since"] = since
    if until:
        values["until"] = until
    return shape, values


def conversations_matching(shape: dict, values: dict) -> QuerySet[Conversation]:
    """The list's queryset for a `list_query` shape and values."""
    queryset = conversations_in(None if shape.get("all_channels") else values["visible_channels"])
    if shape["archived"] is not None:
        queryset = queryset.filter(is_archived=shape["archived"])
    queryset = queryset.filter(_filter_condition(shape, values))
    search = values.get("search")
    if search:
        queryset = queryset.filter(
            Q(contact__name__icontains=search)
            | Q(contact__phone__icontains=search)
            | Q(contact__email__icontains=search)
            | Q(subject__icontains=search)
        )
    if "since" in values:
        queryset = queryset.filter(last_message_at__gte=values["since"])
    if "until" in values:
        queryset = queryset.filter(last_message_at__lte=values["until"])
    return queryset


# The list's filters a saved view can hold (communications/saved_views): they are exactly the
# ones `conversation_filter` reads, and the page's live view counts (static/inbox/views.js
# `matches`) mirror its rules on a conversation's state.
VIEW_FILTERS = ("status", "channel", "assignee", "team", "label", "unread")


def conversation_filter(user, params) -> Q:
    """The list's status, channel, assignee, team, label and unread filters as one condition,
    validated (a bad value is a 400 naming the parameter). The inbox list, the API, search and
    the saved views' counts all filter through it: one way to filter."""
    return _filter_condition(*_filter_parts(user, params))


def _filter_parts(user, params) -> tuple[dict, dict]:
    """`conversation_filter`'s parameters, validated, as shape and values (`list_query`)."""
    shape, values = {}, {}
    status = params.get("status")
    if status:
        if status not in Conversation.Status.values:
            raise ValidationError({"status": [f"must be one of {', '.join(Conversation.Status)}"]})
        shape["status"] = status
    channel = params.get("channel")
    if channel:
        values["channel"] = _int_param("channel", channel)
    assignee = params.get("assignee")
    if assignee == "me":
        values["assignee"] = user.pk
    elif assignee in ("none", "unassigned"):
        shape["assignee"] = None
    elif assignee:
        values["assignee"] = _int_param("assignee", assignee)
    team = params.get("team")
    if team in ("none", "unassigned"):
        shape["team"] = None
    elif team:
        values["team"] = _int_param("team", team)
    if bool_param(params, "unread"):
        shape["unread"] = True
    label = params.get("label")
    if label:
        values["label"] = _int_param("label", label)
    return shape, values


def _filter_condition(shape: dict, values: dict) -> Q:
    condition = Q()
    if "status" in shape:
        condition &= Q(status=shape["status"])
    if "channel" in values:
        condition &= Q(channel_id=values["channel"])
    if "assignee" in shape:
        condition &= Q(assignee__isnull=True)
    elif "assignee" in values:
        condition &= Q(assignee_id=values["assignee"])
    if "team" in shape:
        condition &= Q(team__isnull=True)
    elif "team" in values:
        condition &= Q(team_id=values["team"])
    if shape.get("unread"):
        condition &= Q(unread_count__gt=0)
    if "label" in values:
        links = ConversationLabel.objects.filter(label_id=values["label"])
        condition &= Q(pk__in=links.values("conversation_id"))
    return condition


def conversation_page(user, params) -> Page:
    """Rows for `conversation_row_payload`: plain dicts, no model instances (~4x cheaper).
    Its SQL is compiled once per shape of the filters (query_templates)."""
    shape, values = list_query(user, params)
    size = page_size(params)
    values |= _cursor_values("cursor", params.get("cursor"))

    def build(values):
        return _list_rows(conversations_matching(shape, values), values, size)

    key = ("conversation_page", size, *sorted(shape.items()))
    return _list_page(query_templates.rows(key, build, values), size)


def conversation_rows(queryset, params, *, cursor_param: str = "cursor") -> Page:
    """A keyset page of list rows (dicts) of `queryset`, newest activity first."""
    size = page_size(params)
    cursor = _cursor_values(cursor_param, params.get(cursor_param))
    return _list_page(list(_list_rows(queryset, cursor, size)), size)


def _list_rows(queryset, cursor: dict, size: int):
    queryset = queryset.annotate(label_rows=Subquery(_labels_json(), output_field=JSONField()))
    queryset = queryset.values(
        *CONVERSATION_COLUMNS,
        "label_rows",
        "assignee__first_name",
        "assignee__last_name",
        "assignee__username",
        *(f"contact__{column}" for column in CONTACT_COLUMNS),
        *(f"channel__{column}" for column in CHANNEL_COLUMNS),
    )
    return _keyset_slice(queryset, "last_message_at", cursor, size)


def _list_page(rows: list[dict], size: int) -> Page:
    page = _page_of(rows, "last_message_at", size)
    for row in page.items:
        row["labels"] = sorted(
            row.pop("label_rows") or [], key=lambda label: (label["name"].lower(), label["id"])
        )
        if row["assignee_id"] is not None:
            row["assignee_name"] = display_name(
                row.pop("assignee__first_name"),
                row.pop("assignee__last_name"),
                row.pop("assignee__username"),
            )
    return page


def conversation_with_card(conversation_id: int, user) -> Conversation:
    """Thread header plus the customer's card (contact and recent orders), the labels of
    both (in the conversation's query) and the newest activity lines, in three queries."""
    queryset = (
        conversations_for(user)
        .select_related("contact", "channel", "assignee")
        .defer("channel__secrets")
        .annotate(
            label_rows=Subquery(_labels_json(), output_field=JSONField()),
            contact_label_rows=Subquery(_contact_labels_json(), output_field=JSONField()),
            attribute_definition_rows=Subquery(
                attribute_definitions_json(), output_field=JSONField()
            ),
        )
    )
    try:
        conversation = queryset.get(pk=conversation_id)
    except (Conversation.DoesNotExist, ValueError, TypeError):
        raise Http404("conversation not found") from None
    conversation._loaded_labels = _labels_from_json(conversation.label_rows)
    conversation.contact._loaded_labels = _labels_from_json(conversation.contact_label_rows)
    conversation.contact._attribute_definitions = conversation.attribute_definition_rows or []
    orders = Order.objects.filter(contact_id=conversation.contact_id).order_by("-ordered_at")[:20]
    conversation.contact._prefetched_objects_cache = {"orders": list(orders)}
    conversation._recent_activity = list(
        Activity.objects.filter(conversation_id=conversation.pk).order_by("-created_at", "-id")[
            :RECENT_ACTIVITY
        ]
    )
    return conversation


RECENT_ACTIVITY = 100


def activity_page(conversation_id: int, params) -> Page:
    """A conversation's activity lines, newest first; `before` is the previous page's
    next_cursor."""
    size = page_size(params, default=50, maximum=200)
    queryset = Activity.objects.filter(conversation_id=conversation_id).values(*ACTIVITY_COLUMNS)
    return _keyset_page(queryset, "created_at", "before", params.get("before"), size)


def _labels_from_json(rows) -> list[Label]:
    rows = sorted(rows or [], key=lambda row: (row["name"].lower(), row["id"]))
    return [Label(id=row["id"], name=row["name"], color=row["color"]) for row in rows]


def attribute_definitions_json():
    """Every custom attribute definition as one JSON array, as a subquery of another query
    (the card's): the definitions cost no query of their own."""
    row = JSONObject(**{column: F(column) for column in ATTRIBUTE_DEFINITION_COLUMNS})
    aggregate = JSONBAgg(row) if connection.vendor == "postgresql" else _JSONGroupArray(row)
    return (
        CustomAttributeDefinition.objects.annotate(all=Value(1))
        .order_by()
        .values("all")
        .annotate(rows=aggregate)
        .values("rows")
    )


def _contact_labels_json(contact_ref: str = "contact_id"):
    label = JSONObject(id=F("label_id"), name=F("label__name"), color=F("label__color"))
    aggregate = JSONBAgg(label) if connection.vendor == "postgresql" else _JSONGroupArray(label)
    return (
        ContactLabel.objects.filter(contact_id=OuterRef(contact_ref))
        .order_by()
        .values("contact_id")
        .annotate(rows=aggregate)
        .values("rows")
    )


def _labels_json():
    """Each conversation's labels as one JSON array, in the list's own query."""
    label = JSONObject(id=F("label_id"), name=F("label__name"), color=F("label__color"))
    aggregate = JSONBAgg(label) if connection.vendor == "postgresql" else _JSONGroupArray(label)
    return (
        ConversationLabel.objects.filter(conversation_id=OuterRef("id"))
        .order_by()
        .values("conversation_id")
        .annotate(rows=aggregate)
        .values("rows")
    )


def message_page(conversation_id: int, params) -> Page:
    """Rows for `message_row_payload`, newest first; `before` is the cursor of the oldest
    message the client already has. The attachments come in the same query (a JSON array per
    row from the attachments' message index), so a page is one query whatever its size.

    `around=<message id>` (a search hit): the page of messages around that one, older half and
    newer half, with `next_cursor` for older pages and `newer_cursor` for newer ones (three
    queries). `after=<newer_cursor>`: the page of messages just newer than a cursor."""
    size = page_size(params, default=50, maximum=200)
    around, after = params.get("around"), params.get("after")
    if around:
        queryset = _message_rows(conversation_id)
        page = _page_around(conversation_id, queryset, _int_param("around", around), size)
    elif after:
        moment, pk = decode_cursor("after", after)
        newer = _newer_rows(_message_rows(conversation_id), moment, pk, size)
        page = Page(newer.items, None, newer.next_cursor)
    else:  # the thread's newest page and older ones: compiled once per shape
        values = {"conversation": conversation_id} | _cursor_values("before", params.get("before"))

        def build(values):
            return _keyset_slice(_message_rows(values["conversation"]), "created_at", values, size)

        rows = query_templates.rows(("message_page", size), build, values)
        page = _page_of(rows, "created_at", size)
    for row in page.items:
        first, last, username = (
            row.pop("sender_user__first_name"),
            row.pop("sender_user__last_name"),
            row.pop("sender_user__username"),
        )
        row["sender_name"] = (
            display_name(first, last, username) if row.pop("sender_user_id") else ""
        )
        row["attachments"] = row.pop("attachment_rows") or []
    return page


def _page_around(conversation_id: int, queryset, message_id: int, size: int) -> Page:
    anchor = (
        Message.objects.filter(conversation_id=conversation_id, pk=message_id)
        .values_list("created_at", flat=True)
        .first()
    )
    if anchor is None:
        raise ValidationError({"around": [f"message {message_id} is not in this conversation"]})
    newer = _newer_rows(queryset, anchor, message_id, size // 2)
    older_cursor = encode_cursor(anchor, message_id + 1)  # the anchor itself and older
    older = _keyset_page(queryset, "created_at", "before", older_cursor, size - len(newer.items))
    return Page(newer.items + older.items, older.next_cursor, newer.next_cursor)


def _newer_rows(queryset, moment, pk: int, size: int) -> Page:
    """Rows just newer than (moment, pk), returned newest first; `next_cursor` is the newest
    row's when more newer ones exist."""
    rows = list(
        queryset.filter(created_at__gte=moment)
        .filter(Q(created_at__gt=moment) | Q(created_at=moment, id__gt=pk))
        .order_by("created_at", "id")[: size + 1]
    )
    more = len(rows) > size
    rows = rows[:size]
    cursor = None
    if more:  # the newest row returned, or the starting point when none was asked for
        cursor = encode_cursor(rows[-1]["created_at"], rows[-1]["id"]) if rows else None
        cursor = cursor or encode_cursor(moment, pk)
    return Page(rows[::-1], cursor)


def _message_rows(conversation_id: int):
    attachment = JSONObject(**{column: F(column) for column in ATTACHMENT_COLUMNS})
    if connection.vendor == "postgresql":
        aggregate = JSONBAgg(attachment, order_by="id")
    else:
        aggregate = _JSONGroupArray(attachment)
    attachments = (
        Attachment.objects.filter(message_id=OuterRef("id"))
        .order_by()
        .values("message_id")
        .annotate(rows=aggregate)
        .values("rows")
    )
    queryset = (
        Message.objects.filter(conversation_id=conversation_id)
        .annotate(attachment_rows=Subquery(attachments, output_field=JSONField()))
        .values(
            *MESSAGE_COLUMNS,
            "sender_user_id",
            "sender_user__first_name",
            "sender_user__last_name",
            "sender_user__username",
            "attachment_rows",
        )
    )
    return queryset


class _JSONGroupArray(Aggregate):
    """SQLite's JSON array aggregate (the embedded database has no JSONB_AGG)."""

    function = "JSON_GROUP_ARRAY"
    output_field = JSONField()


def _keyset_page(queryset, field: str, param: str, cursor: str | None, size: int) -> Page:
    """Rows (dicts) newest first by (field, id), after the cursor; never an OFFSET, never a
    COUNT."""
    rows = list(_keyset_slice(queryset, field, _cursor_values(param, cursor), size))
    return _page_of(rows, field, size)


def _cursor_values(param: str, cursor: str | None) -> dict:
    if not cursor:
        return {}
    moment, pk = decode_cursor(param, cursor)
    return {"cursor_moment": moment, "cursor_id": pk}


def _keyset_slice(queryset, field: str, cursor: dict, size: int):
    """`size + 1` rows newest first by (field, id), after the cursor when `cursor` (a dict
    that may hold other values too) has `_cursor_values`'s."""
    if "cursor_moment" in cursor:
        moment, pk = cursor["cursor_moment"], cursor["cursor_id"]
        # The redundant `<=` bound is what lets PostgreSQL start the index scan at the cursor;
        # the OR alone is only a filter, and a deep page would scan every row above it.
        queryset = queryset.filter(**{f"{field}__lte": moment}).filter(
            Q(**{f"{field}__lt": moment}) | Q(**{field: moment, "id__lt": pk})
        )
    return queryset.order_by(f"-{field}", "-id")[: size + 1]


def _page_of(rows: list[dict], field: str, size: int) -> Page:
    """A page of the `size + 1` rows `_keyset_slice` read: the extra one says there is more."""
    next_cursor = None
    if len(rows) > size:
        rows = rows[:size]
        next_cursor = encode_cursor(rows[-1][field], rows[-1]["id"])
    return Page(rows, next_cursor)


def _int_param(name: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ValidationError({name: [f"'{value}' is not an id"]}) from None


def mention_page(user, params) -> Page:
    """The user's mentions on conversations they can still see: unread first, then read,
    each newest first. The cursor carries the phase (`u`/`r`) with (created_at, id), so a
    page never counts or skips; a page that crosses from unread to read is two queries."""
    size = page_size(params)
    unread_only = bool_param(params, "unread")
    phase, moment, pk = "u", None, None
    raw = params.get("cursor")
    if raw:
        if raw[:2] not in ("u.", "r."):
            raise ValidationError({"cursor": ["invalid cursor"]})
        phase = raw[0]
        moment, pk = decode_cursor("cursor", raw[2:])
    items: list = []
    next_cursor = None
    for current in ("u", "r"):
        if current == "u" and phase == "r":
            continue
        if current == "r" and unread_only:
            break
        queryset = _mentions_of(user, read=current == "r")
        if moment is not None and current == phase:
            queryset = queryset.filter(created_at__lte=moment).filter(
                Q(created_at__lt=moment) | Q(created_at=moment, id__lt=pk)
            )
        rows = list(queryset.order_by("-created_at", "-id")[: size - len(items) + 1])
        if len(rows) > size - len(items):
            rows = rows[: size - len(items)]
            items += rows
            next_cursor = f"{current}." + encode_cursor(rows[-1]["created_at"], rows[-1]["id"])
            break
        items += rows
    return Page(items, next_cursor)


def _mentions_of(user, *, read: bool):
    mentions = Mention.objects.filter(user=user, read_at__isnull=not read)
    ids = visible_channel_ids(user)
    if ids is not None:
        mentions = mentions.filter(conversation__channel_id__in=ids)
    return mentions.values(
        "id",
        "created_at",
        "read_at",
        "conversation_id",
        "conversation__channel_id",
        "conversation__contact__name",
        "conversation__contact__phone",
        "conversation__contact__email",
        "message_id",
        "message__content",
        "message__created_at",
        "message__sender_user__first_name",
        "message__sender_user__last_name",
        "message__sender_user__username",
    )


def mention_row_payload(row: dict) -> dict:
    sender = display_name(
        row["message__sender_user__first_name"] or "",
        row["message__sender_user__last_name"] or "",
        row["message__sender_user__username"] or "",
    )
    return {
        "id": row["id"],
        "created_at": _time(row["created_at"]),
        "read_at": _time(row["read_at"]),
        "conversation": {
            "id": row["conversation_id"],
            "contact_name": row["conversation__contact__name"]
            or row["conversation__contact__phone"]
            or row["conversation__contact__email"]
            or "",
            "channel_id": row["conversation__channel_id"],
        },
        "message": {
            "id": row["message_id"],
            "content": row["message__content"],
            "sender_name": sender,
            "created_at": _time(row["message__created_at"]),
        },
    }


def unread_mention_count(user) -> int:
    mentions = Mention.objects.filter(user=user, read_at__isnull=True)
    ids = visible_channel_ids(user)
    if ids is not None:
        mentions = mentions.filter(conversation__channel_id__in=ids)
    return mentions.count()


# --- merge: duplicate contacts and merge candidates (services/merge.py) ----------------------


def visible_contacts(user):
    """The contacts the user may see (access.contacts_for) that are not merged away."""
    return contacts_for(user).filter(merged_into__isnull=True)


def duplicate_contacts(user, contact: Contact, *, limit: int = 20) -> list[dict]:
    """Contacts that look like the same person as `contact`: the same phone number (E.164,
    whatever its formatting) or the same email address (any case). One query; each result
    says why ({"contact": Contact, "reasons": ["phone", "email"]})."""
    from .services.merge import e164, same_phone

    conditions = Q()
    if contact.email:
        conditions |= Q(email__iexact=contact.email)
    number = e164(contact.phone)
    if number:
        # The last 7 digits narrow it down in the database (the trigram index on the digits,
        # crm 0005); `same_phone` decides.
        conditions |= Q(phone_digits__endswith=number[-7:])
    if not conditions:
        return []
    found = []
    candidates = visible_contacts(user).filter(conditions).exclude(pk=contact.pk).order_by("id")
    for candidate in candidates[: limit * 3]:
        reasons = []
        if number and candidate.phone and same_phone(contact.phone, candidate.phone):
            reasons.append("phone")
        if contact.email and candidate.email.lower() == contact.email.lower():
            reasons.append("email")
        if reasons:
            found.append({"contact": candidate, "reasons": reasons})
    return found[:limit]


def merge_candidates(user, conversation: Conversation, *, limit: int = 50) -> list[dict]:
    """What `conversation` can be merged with: the other conversations of its contact and of
    the contacts that look like the same person, that the user may see and that are not
    merged away; newest first. Two queries (the duplicates, then the conversations)."""
    duplicates = duplicate_contacts(user, conversation.contact)
    reasons = {item["contact"].pk: item["reasons"] for item in duplicates}
    contact_ids = [conversation.contact_id, *reasons]
    rows = (
        conversations_for(user)
        .filter(contact_id__in=contact_ids, merged_into__isnull=True)
        .exclude(pk=conversation.pk)
        .select_related("contact", "channel", "assignee")
        .defer("channel__secrets")
        .order_by("-last_message_at", "-id")[:limit]
    )
    return [
        {
            "conversation": row,
            "same_contact": row.contact_id == conversation.contact_id,
            "reasons": reasons.get(row.contact_id, []),
        }
        for row in rows
    ]


CONTACT_CONVERSATIONS = 100
CONTACT_NOTES = 50


def contact_with_details(user, contact_id) -> Contact:
    """The contacts page and GET /api/v1/contacts/<id>/: the contact (access-checked, its
    labels and the attribute definitions in the same query), recent orders, every conversation
    the user may see across channels (newest first, up to 100) and the newest private notes on
    them: four queries (five with a manager's channels)."""
    queryset = contacts_for(user).annotate(
        label_rows=Subquery(_contact_labels_json("pk"), output_field=JSONField()),
        attribute_definition_rows=Subquery(attribute_definitions_json(), output_field=JSONField()),
    )
    try:
        contact = queryset.get(pk=contact_id)
    except (Contact.DoesNotExist, ValueError, TypeError):
        raise Http404("contact not found") from None
    contact._loaded_labels = _labels_from_json(contact.label_rows)
    contact._attribute_definitions = contact.attribute_definition_rows or []
    orders = Order.objects.filter(contact_id=contact.pk).order_by("-ordered_at")[:20]
    contact._prefetched_objects_cache = {"orders": list(orders)}
    theirs = conversations_for(user).filter(contact_id=contact.pk)
    contact._conversation_rows = conversation_rows(
        theirs, {"page_size": str(CONTACT_CONVERSATIONS)}
    ).items
    notes = Message.objects.filter(
        conversation__contact_id=contact.pk, kind=Message.Kind.NOTE, is_deleted=False
    )
    channels = visible_channel_ids(user)
    if channels is not None:
        notes = notes.filter(channel_id__in=channels)
    contact._note_rows = list(
        notes.order_by("-created_at", "-id").values(
            "id",
            "conversation_id",
            "content",
            "created_at",
            "sender_user__first_name",
            "sender_user__last_name",
            "sender_user__username",
        )[:CONTACT_NOTES]
    )
    return contact
