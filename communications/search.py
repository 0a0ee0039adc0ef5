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
from django.db.models import BooleanField, Exists, OuterRef, Q, Subquery, TextField
from django.db.models.expressions import Expression
from rest_framework.exceptions import ValidationError

from crm.models import Contact

from .access import contacts_for, conversations_for, visible_channel_ids
from .api.params import decode_cursor, encode_cursor, page_size, text_param
from .models import Message
from .search_index import FTS_TABLE, text_config
from .selectors import Page, conversation_rows, filtered_conversations
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
    if query.phone_digits:
        # Only digits and separators: a phone number, matched on one trigram index.
        condition = Q(phone_digits__contains=query.phone_digits)
    else:
        condition = (
            Q(name__icontains=query.text)
            | Q(email__icontains=query.text)
            | Q(username__icontains=query.text)
        )
    return Contact.objects.filter(condition).values("id")


def contact_list(user, params) -> Page:
    """The contacts page and GET /api/v1/contacts/: the contacts the user may see (access.
    contacts_for), newest first, keyset pages by id; `q` narrows them with the same match as
    the search's contacts group (name, email, username, phone digits in any formatting)."""
    size = page_size(params, default=25)
    matching = contacts_for(user).filter(merged_into__isnull=True)  # not merged away
    if " ".join(text_param(params, "q").split()):
        matching = matching.filter(pk__in=_matching_contacts(parse_query(params)))
    theirs = conversations_for(user).filter(contact_id=OuterRef("pk"))
    rows = Contact.objects.annotate(
        latest_conversation_id=Subquery(theirs.order_by("-last_message_at", "-id").values("id")[:1])
    ).values(*CONTACT_COLUMNS, "created_at", "latest_conversation_id")
    return _id_page(matching, rows, params.get("cursor"), size)


def contact_list_payload(page: Page) -> dict:
    return {
        "results": [_contact_payload(row) for row in page.items],
        "next_cursor": page.next_cursor,
    }


def _contact_page(query: Query, conversations, params, size: int) -> Page:
    theirs = conversations.filter(contact_id=OuterRef("pk"))
    matching = Contact.objects.filter(pk__in=_matching_contacts(query)).filter(Exists(theirs))
    rows = Contact.objects.annotate(
        # Where the inbox opens a contact: their most recent conversation the user may see.
        latest_conversation_id=Subquery(theirs.order_by("-last_message_at", "-id").values("id")[:1])
    ).values(*CONTACT_COLUMNS, "created_at", "latest_conversation_id")
    return _id_page(matching, rows, params.get("cursor"), size)


def _id_page(matching, rows, cursor: str | None, size: int, *, probe: bool = False) -> Page:
    """Newest stored first (id descending), one keyset page. By id and not by date: the
    primary key is an index already there, so a common word walks it newest first and stops
    at a page of hits, where a date order would need another index on the hot messages table
    or a sort of every hit. Ids follow arrival; only imported history is stored later than it
    was written.

    `probe` (PostgreSQL's message search): the walk is a disaster for a rare word — the
    planner cannot know a word is rare (or absent) and walks every message looking for a page
    of hits (measured: 0.7 s over 2M messages for a word in none). So first up to RARE_HITS
    hits are read through the GIN index, in no order: fewer than that is every hit, and the
    page is cut from them; as many means a common word, and the walk finds a page soon.

    The page's ids are chosen first from `matching` (a subquery: the filter and the order,
    nothing joined), then only those `rows` are read with their joins and snippets."""
    if cursor:
        matching = matching.filter(id__lt=_decode_id_cursor(cursor))
    ids = None
    if probe:
        hits = list(matching.values_list("id", flat=True)[:RARE_HITS])
        if len(hits) < RARE_HITS:
            ids = sorted(hits, reverse=True)[: size + 1]
    if ids is None:
        ids = matching.order_by("-id").values("id")[: size + 1]
    rows = list(rows.filter(id__in=ids).order_by("-id"))
    next_cursor = None
    if len(rows) > size:
        rows = rows[:size]
        next_cursor = encode_cursor(rows[-1]["created_at"], rows[-1]["id"])
    return Page(rows, next_cursor)


def _decode_id_cursor(cursor: str) -> int:
    return decode_cursor("cursor", cursor)[1]


def _contact_payload(row: dict) -> dict:
    return {**contact_row_payload(row), "latest_conversation_id": row["latest_conversation_id"]}


# --- messages ---------------------------------------------------------------------------

# A word with fewer hits than this (in what the user may see) is paged from its GIN hits.
RARE_HITS = 300

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
    rows = Message.objects.all()
    if connection.vendor == "postgresql":
        tsquery, tsparams = _tsquery(query.words)
        queryset = queryset.filter(
            _OwnTableSQL(f"{{t}}.search_vector @@ {tsquery}", tsparams, BooleanField())
        )
        rows = rows.annotate(
            snippet=_OwnTableSQL(
                f"ts_headline(%s::regconfig, coalesce({{t}}.content, '') "
                f"|| ' ' || coalesce({{t}}.metadata #>> '{{{{email,subject}}}}', ''),"
                f" {tsquery}, %s)",
                [
                    text_config(),
                    *tsparams,
                    f"StartSel={HIT_START}, StopSel={HIT_END}, MaxWords=30, MinWords=12, ShortWord=2",
                ],
                TextField(),
            )
        ).values(*MESSAGE_RESULT_COLUMNS, "snippet")
    else:
        match = _fts5_match(query.words)
        queryset = queryset.filter(
            _OwnTableSQL(
                f"{{t}}.id IN (SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH %s)",
                [match],
                BooleanField(),
            )
        )
        rows = rows.values(*MESSAGE_RESULT_COLUMNS)
    postgresql = connection.vendor == "postgresql"
    page = _id_page(queryset, rows, params.get("cursor"), size, probe=postgresql)
    if not postgresql and page.items:
        snippets = _fts5_snippets(query.words, [row["id"] for row in page.items])
        for row in page.items:
            row["snippet"] = snippets.get(row["id"], "")
    return Page([_message_payload(row) for row in page.items], page.next_cursor)


class _OwnTableSQL(Expression):
    """SQL about the query's own table, written `{t}.column`: `{t}` becomes the table's alias
    in that query (U0 inside a subquery), which a RawSQL naming the table cannot follow."""

    def __init__(self, template: str, params: list, output_field):
        super().__init__(output_field=output_field)
        self.template, self.params = template, list(params)

    def as_sql(self, compiler, connection):
        alias = compiler.quote_name_unless_alias(compiler.query.get_initial_alias())
        return self.template.format(t=alias), self.params


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
