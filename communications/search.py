"""Search over all history: conversations, messages (the hit highlighted in context) and
contacts, for one user, with the inbox list's filters.

Access is part of every query (the user's channels), so another team's hits are neither
returned nor counted; nothing is counted at all (keyset pages, like every list here).

PostgreSQL: messages by `search_vector @@ query` on the GIN index (communications/
search_index.py); each word matches its stem in SEARCH_TEXT_CONFIG or itself as written
(`simple`), so "orders" finds "ordered" and "Ana" or "4567" match as typed; the snippet is
`ts_headline`. Contacts by trigram-indexed partial name, email, username, and phone digits in
any formatting. SQLite (embedded): the FTS5 table with the porter stemmer and `snippet()`.
"""

import html
import re
from dataclasses import dataclass

from django.db import connection
from django.db.models import BooleanField, Exists, OuterRef, Q, Subquery
from django.db.models.expressions import RawSQL
from rest_framework.exceptions import ValidationError

from crm.models import Contact

from .access import visible_channel_ids
from .api.params import page_size, text_param
from .models import Message
from .search_index import FTS_TABLE, text_config
from .selectors import Page, _keyset_page, conversation_rows, filtered_conversations
from .serializers import CONTACT_COLUMNS, contact_row_payload, conversation_row_payload

MAX_QUERY_LENGTH = 200
MAX_WORDS = 12
MIN_PHONE_DIGITS = 3
GROUPS = ("conversations", "messages", "contacts")
# The conversation-list filters search shares (`archived` counts everything unless given).
FILTERS = ("status", "channel", "assignee", "team", "archived", "unread")

# Marks around a hit in the snippet, replaced by <mark> after the text is HTML-escaped.
HIT_START, HIT_END = "\x02", "\x03"
PHONE_LIKE = re.compile(r"^[\d\s+\-().\u00a0/]+$")
WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class Query:
    text: str
    words: list[str]
    phone_digits: str  # "" unless the query looks like a phone number


def parse_query(params) -> Query:
    text = " ".join(text_param(params, "q").split())
    if not text:
        raise ValidationError(
            {"q": ["must not be empty: type a word, a name, a phone number or an email"]}
        )
    if len(text) > MAX_QUERY_LENGTH:
        raise ValidationError(
            {"q": [f"is {len(text)} characters long: at most {MAX_QUERY_LENGTH} are searched"]}
        )
    digits = re.sub(r"\D", "", text) if PHONE_LIKE.match(text) else ""
    words = WORD.findall(text.casefold())[:MAX_WORDS]
    return Query(text, words, digits if len(digits) >= MIN_PHONE_DIGITS else "")


def search(user, params) -> dict[str, Page]:
    """The pages of each group asked for (`type`: all or one group; `cursor` needs one)."""
    query = parse_query(params)
    kind = params.get("type") or "all"
    if kind != "all" and kind not in GROUPS:
        raise ValidationError({"type": [f"must be all or one of {', '.join(GROUPS)}"]})
    if params.get("cursor") and kind == "all":
        raise ValidationError(
            {"cursor": ["pages one group at a time: give type=conversations|messages|contacts"]}
        )
    size = page_size(params, default=10 if kind == "all" else 25)
    filters = {key: params[key] for key in FILTERS if params.get(key)}
    filters["page_size"] = str(size)
    if kind != "all" and params.get("cursor"):
        filters["cursor"] = params["cursor"]
    # Validated once (a bad filter is a 400 naming it) and shared by the groups as a subquery.
    conversations = filtered_conversations(user, filters, all_history=True, text_search=False)
    filtered = any(key in filters for key in FILTERS)
    wanted = GROUPS if kind == "all" else (kind,)
    results = {}
    if "conversations" in wanted:
        results["conversations"] = conversation_rows(
            conversations.filter(contact__in=_matching_contacts(query)), filters
        )
    if "messages" in wanted:
        results["messages"] = _message_page(user, query, conversations, filtered, filters, size)
    if "contacts" in wanted:
        results["contacts"] = _contact_page(query, conversations, filters, size)
    return results


def result_payload(results: dict[str, Page]) -> dict:
    payload_of = {
        "conversations": conversation_row_payload,
        "messages": lambda row: row,
        "contacts": _contact_payload,
    }
    return {
        group: {
            "results": [payload_of[group](row) for row in page.items],
            "next_cursor": page.next_cursor,
        }
        for group, page in results.items()
    }


# --- contacts ---------------------------------------------------------------------------


def _matching_contacts(query: Query):
    """Contacts whose name, email or username contains the query, or whose phone contains
    its digits (partial numbers too), as a subquery."""
    condition = (
        Q(name__icontains=query.text)
        | Q(email__icontains=query.text)
        | Q(username__icontains=query.text)
    )
    if query.phone_digits:
        condition |= Q(phone_digits__contains=query.phone_digits)
    return Contact.objects.filter(condition).values("id")


def _contact_page(query: Query, conversations, params, size: int) -> Page:
    matching = _matching_contacts(query)
    theirs = conversations.filter(contact_id=OuterRef("pk"))
    queryset = (
        Contact.objects.filter(pk__in=matching)
        .filter(Exists(theirs))
        # Where the inbox opens a contact: their most recent conversation the user may see.
        .annotate(
            latest_conversation_id=Subquery(
                theirs.order_by("-last_message_at", "-id").values("id")[:1]
            )
        )
        .values(*CONTACT_COLUMNS, "created_at", "latest_conversation_id")
    )
    return _keyset_page(queryset, "created_at", "cursor", params.get("cursor"), size)


def _contact_payload(row: dict) -> dict:
    return {**contact_row_payload(row), "latest_conversation_id": row["latest_conversation_id"]}


# --- messages ---------------------------------------------------------------------------

MESSAGE_RESULT_COLUMNS = (
    "id",
    "conversation_id",
    "direction",
    "kind",
    "created_at",
    "conversation__contact__name",
    "conversation__subject",
    "channel_id",
    "channel__name",
    "channel__kind",
)


def _message_page(user, query: Query, conversations, filtered: bool, params, size: int) -> Page:
    if not query.words:
        return Page([], None)
    queryset = Message.objects.filter(is_deleted=False)
    channels = visible_channel_ids(user)
    if channels is not None:
        # Always on the message's own channel column: the access rule inside the query.
        queryset = queryset.filter(channel_id__in=channels)
    if filtered:
        queryset = queryset.filter(conversation_id__in=conversations.values("id"))
    if connection.vendor == "postgresql":
        tsquery, tsparams = _tsquery(query.words)
        queryset = queryset.filter(
            RawSQL(f"communications_message.search_vector @@ {tsquery}", tsparams, BooleanField())
        ).annotate(
            snippet=RawSQL(
                f"ts_headline(%s::regconfig, coalesce(communications_message.content, '') "
                f"|| ' ' || coalesce(communications_message.metadata #>> '{{email,subject}}', ''),"
                f" {tsquery}, %s)",
                [
                    text_config(),
                    *tsparams,
                    f"StartSel={HIT_START}, StopSel={HIT_END}, MaxWords=30, MinWords=12, ShortWord=2",
                ],
            )
        )
        columns = (*MESSAGE_RESULT_COLUMNS, "snippet")
    else:
        match = _fts5_match(query.words)
        queryset = queryset.filter(
            RawSQL(
                f"communications_message.id IN (SELECT rowid FROM {FTS_TABLE} "
                f"WHERE {FTS_TABLE} MATCH %s)",
                [match],
                BooleanField(),
            )
        )
        columns = MESSAGE_RESULT_COLUMNS
    page = _keyset_page(
        queryset.values(*columns), "created_at", "cursor", params.get("cursor"), size
    )
    if connection.vendor != "postgresql" and page.items:
        snippets = _fts5_snippets(query.words, [row["id"] for row in page.items])
        for row in page.items:
            row["snippet"] = snippets.get(row["id"], "")
    return Page([_message_payload(row) for row in page.items], page.next_cursor)


def _tsquery(words: list[str]) -> tuple[str, list]:
    """Every word, as its stem in the configured language or as written (`simple`)."""
    config = text_config()
    parts, params = [], []
    for word in words:
        parts.append("(plainto_tsquery(%s::regconfig, %s) || plainto_tsquery('simple', %s))")
        params += [config, word, word]
    return "(" + " && ".join(parts) + ")", params


def _fts5_match(words: list[str]) -> str:
    return " ".join('"' + word.replace('"', '""') + '"' for word in words)


def _fts5_snippets(words: list[str], ids: list[int]) -> dict[int, str]:
    placeholders = ", ".join("%s" for _ in ids)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT rowid, snippet({FTS_TABLE}, 0, %s, %s, ' … ', 16) FROM {FTS_TABLE} "
            f"WHERE {FTS_TABLE} MATCH %s AND rowid IN ({placeholders})",
            [HIT_START, HIT_END, _fts5_match(words), *ids],
        )
        return dict(cursor.fetchall())


def highlight_html(snippet: str) -> str:
    """The snippet as safe HTML: everything escaped, then only the hit marks become <mark>."""
    escaped = html.escape(snippet.strip(), quote=True)
    return escaped.replace(HIT_START, "<mark>").replace(HIT_END, "</mark>")


def _message_payload(row: dict) -> dict:
    return {
        "id": row["id"],
        "conversation_id": row["conversation_id"],
        "direction": row["direction"],
        "kind": row["kind"],
        "created_at": row["created_at"],
        "contact_name": row["conversation__contact__name"],
        "subject": row["conversation__subject"],
        "channel": {
            "id": row["channel_id"],
            "name": row["channel__name"],
            "kind": row["channel__kind"],
        },
        "highlight_html": highlight_html(row.get("snippet") or ""),
    }
