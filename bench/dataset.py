"""Loads a realistic inbox into PostgreSQL with COPY, in minutes.

Shape: a few channels of every kind, teams, a manager whose team sees half of the channels,
agents, one contact + identity + conversation per customer, and messages over six months
with a skewed count per thread: a handful of 10,000-message threads, a long tail of short
ones. The big threads' rows are interleaved with everyone else's (emitted in time order), so
a page of one is spread over the table as it would be after months of traffic.

Rows are written with explicit ids; foreign-key triggers are skipped during the load
(`session_replication_role = replica`) because the generator keeps every reference valid.
"""

import json
import random
import time
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.db import connection, models
from django.utils import timezone
from rest_framework.authtoken.models import Token

from communications.models import Channel, ContactIdentity, Conversation, Message
from crm.models import Contact, Team
from crm.sample_text import (
    AGENT_LINES,
    COUNTRIES,
    CUSTOMER_LINES,
    FIRST,
    GREETINGS,
    LAST,
    PRODUCTS,
)

HUGE_THREAD_SIZE = 10_000
SPAN_DAYS = 180
MANAGER = "bench-manager"

CHANNELS = [
    (Channel.Kind.WHATSAPP, "WhatsApp · Sales"),
    (Channel.Kind.WHATSAPP, "WhatsApp · Support"),
    (Channel.Kind.TELEGRAM, "Telegram bot"),
    (Channel.Kind.MESSENGER, "Facebook page"),
    (Channel.Kind.INSTAGRAM, "Instagram"),
    (Channel.Kind.EMAIL, "support@example.com"),
    (Channel.Kind.API, "Website chat"),
]


def _text_pool(rng: random.Random, lines: list[str], size: int, greet: bool) -> list[str]:
    pool = []
    for _ in range(size):
        text = rng.choice(lines).format(
            order=f"SB-{rng.randint(10000, 99999)}",
            product=rng.choice(PRODUCTS),
            country=rng.choice(COUNTRIES),
        )
        if greet and rng.random() < 0.4:
            greeting = rng.choice(GREETINGS)
            text = f"{greeting}, {text}" if greeting else text[0].upper() + text[1:]
        pool.append(text)
    return pool


class _Copier:
    """COPY rows into a model's table, filling unnamed columns with the field's default."""

    def __init__(self, cursor, model: type[models.Model], values: list[str]):
        # Generated columns (Contact.phone_digits) are computed by the database.
        fields = [f for f in model._meta.concrete_fields if not f.generated]
        self.columns = [f.column for f in fields]
        self.positions = []
        self.defaults = []
        for f in fields:
            name = f.attname
            if name in values:
                self.positions.append(values.index(name))
                self.defaults.append(None)
            else:
                self.positions.append(None)
                self.defaults.append(_db_default(f))
        columns = ", ".join(f'"{c}"' for c in self.columns)
        self.manager = cursor.copy(f'COPY "{model._meta.db_table}" ({columns}) FROM STDIN')

    def __enter__(self):
        self.copy = self.manager.__enter__()
        return self

    def __exit__(self, *exc):
        return self.manager.__exit__(*exc)

    def write(self, row: tuple) -> None:
        self.copy.write_row(
            [
                row[p] if p is not None else d
                for p, d in zip(self.positions, self.defaults, strict=True)
            ]
        )


def _db_default(field: models.Field):
    value = field.get_default()  # "" for blank text fields, None for nullable ones
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return value


def load(conversations: int, messages: int, *, seed: int = 42, log=print) -> dict:
    """Create the dataset; return what the measurements need to know about it."""
    rng = random.Random(seed)
    started = time.monotonic()
    now = timezone.now()
    User = get_user_model()

    team = Team.objects.create(name="Bench team")
    other_team = Team.objects.create(name="Bench other team")
    manager = User.objects.create_user(MANAGER, password="switchboard", first_name="Bench")
    team.members.add(manager)
    agents = [manager] + [
        User.objects.create_user(f"bench-agent-{i}", password="switchboard") for i in range(9)
    ]
    team.members.add(*agents[1:5])
    other_team.members.add(*agents[5:])
    token = Token.objects.create(user=manager)
    channels = []
    for index, (kind, name) in enumerate(CHANNELS):
        channel = Channel.objects.create(kind=kind, name=name, secrets={"inbound_token": "x"})
        channel.teams.add(team if index % 2 == 0 else other_team)
        channels.append(channel)
    visible = [c.pk for i, c in enumerate(channels) if i % 2 == 0]
    agent_ids = [a.pk for a in agents]

    customer_texts = _text_pool(rng, CUSTOMER_LINES, 400, greet=True)
    agent_texts = _text_pool(rng, AGENT_LINES, 200, greet=False)

    huge = max(1, min(5, messages // 400_000))
    huge = min(huge, conversations)
    counts = _thread_sizes(rng, conversations - huge, messages - huge * HUGE_THREAD_SIZE)
    span = timedelta(days=SPAN_DAYS)
    begin = now - span

    # Normal conversations, in order of their start, each with its messages' times.
    starts = sorted(begin + span * rng.random() for _ in counts)

    def thread_times(start: datetime, count: int) -> list[datetime]:
        times, moment = [], start
        for _ in range(count):
            moment += timedelta(seconds=rng.expovariate(1 / 900))
            times.append(min(moment, now - timedelta(seconds=1)))
        return times

    huge_times = [
        sorted(begin + span * rng.random() for _ in range(HUGE_THREAD_SIZE)) for _ in range(huge)
    ]

    conv_rows = []  # filled while messages stream out
    message_id = 0
    message_fields = [
        "id",
        "conversation_id",
        "channel_id",
        "direction",
        "kind",
        "content",
        "status",
        "external_id",
        "sender_contact_id",
        "sender_user_id",
        "provider_timestamp",
        "created_at",
        "updated_at",
    ]

    with connection.cursor() as django_cursor:
        raw = django_cursor.cursor  # the psycopg cursor under Django's wrapper
        raw.execute("SET session_replication_role = replica")
        state: dict[int, dict] = {}

        def emit(copier, conv_id: int, channel_id: int, moment: datetime) -> None:
            nonlocal message_id
            message_id += 1
            st = state[conv_id]
            inbound = rng.random() < 0.55
            if inbound:
                text = rng.choice(customer_texts)
                row = (
                    message_id,
                    conv_id,
                    channel_id,
                    "in",
                    "text",
                    text,
                    "received",
                    f"m{message_id}",
                    conv_id,
                    None,
                    moment,
                    moment,
                    moment,
                )
                st["last_inbound_at"] = moment
                st["unread"] = st["unread"] + 1 if rng.random() < 0.5 else 0
            else:
                text = rng.choice(agent_texts)
                status = rng.choice(("sent", "delivered", "read", "read"))
                row = (
                    message_id,
                    conv_id,
                    channel_id,
                    "out",
                    "text",
                    text,
                    status,
                    f"o{message_id}",
                    None,
                    rng.choice(agent_ids),
                    None,
                    moment,
                    moment,
                )
                st["unread"] = 0
            st["last"] = moment
            st["preview"] = text[:200]
            copier.write(row)

        with _Copier(raw, Message, message_fields) as copier:
            for h in range(huge):
                conv_id = h + 1
                state[conv_id] = {
                    "channel": visible[h % len(visible)],
                    "start": huge_times[h][0],
                    "last": None,
                    "last_inbound_at": None,
                    "unread": 0,
                    "preview": "",
                }
            pointers = [0] * huge
            for index, (start, count) in enumerate(zip(starts, counts, strict=True)):
                for h in range(huge):  # the big threads' messages up to this moment
                    times = huge_times[h]
                    while pointers[h] < len(times) and times[pointers[h]] <= start:
                        emit(copier, h + 1, state[h + 1]["channel"], times[pointers[h]])
                        pointers[h] += 1
                conv_id = huge + index + 1
                channel_id = channels[rng.randrange(len(channels))].pk
                state[conv_id] = {
                    "channel": channel_id,
                    "start": start,
                    "last": None,
                    "last_inbound_at": None,
                    "unread": 0,
                    "preview": "",
                }
                for moment in thread_times(start, count):
                    emit(copier, conv_id, channel_id, moment)
                if index and index % 20_000 == 0:
                    log(
                        f"  {index:,} conversations, {message_id:,} messages "
                        f"({time.monotonic() - started:.0f} s)"
                    )
            for h in range(huge):
                for moment in huge_times[h][pointers[h] :]:
                    emit(copier, h + 1, state[h + 1]["channel"], moment)
        log(f"  messages copied: {message_id:,} ({time.monotonic() - started:.0f} s)")

        contact_fields = ["id", "name", "phone", "email", "created_at", "updated_at"]
        identity_fields = ["id", "channel_id", "contact_id", "external_id", "display_name"]
        conv_fields = [
            "id",
            "channel_id",
            "contact_id",
            "external_id",
            "status",
            "assignee_id",
            "is_archived",
            "unread_count",
            "last_message_at",
            "last_inbound_at",
            "last_message_preview",
            "created_at",
            "updated_at",
        ]
        with _Copier(raw, Contact, contact_fields) as copier:
            for conv_id, st in state.items():
                name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
                phone = f"+49151{conv_id:08d}"
                copier.write((conv_id, name, phone, "", st["start"], st["start"]))
        with _Copier(raw, ContactIdentity, identity_fields) as copier:
            for conv_id, st in state.items():
                copier.write((conv_id, st["channel"], conv_id, f"49151{conv_id:08d}", ""))
        with _Copier(raw, Conversation, conv_fields) as copier:
            for conv_id, st in state.items():
                status = rng.choices(("open", "pending", "snoozed", "resolved"), (40, 10, 5, 45))[0]
                if st["unread"]:
                    status = "open"
                assignee = rng.choice(agent_ids) if rng.random() < 0.6 else None
                archived = status == "resolved" and rng.random() < 0.2
                row = (
                    conv_id,
                    st["channel"],
                    conv_id,
                    f"49151{conv_id:08d}",
                    status,
                    assignee,
                    archived,
                    st["unread"],
                    st["last"],
                    st["last_inbound_at"],
                    st["preview"],
                    st["start"],
                    st["last"],
                )
                copier.write(row)
                conv_rows.append(conv_id)
        raw.execute("SET session_replication_role = DEFAULT")
        for model in (Message, Contact, ContactIdentity, Conversation):
            table = model._meta.db_table
            raw.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f'(SELECT max(id) FROM "{table}"))'
            )
    # COPY ran with triggers off (session_replication_role = replica): the search vectors
    # the trigger keeps on every later write are filled here, as the migration does.
    vectors_started = time.monotonic()
    from communications.search_index import refill_postgresql

    with connection.cursor() as cursor:
        refill_postgresql(cursor, batch=50_000)
    vectors_seconds = round(time.monotonic() - vectors_started, 1)
    log(f"  search vectors filled in {vectors_seconds:.0f} s")
    log(f"  loaded in {time.monotonic() - started:.0f} s; VACUUM ANALYZE…")
    vacuum_started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE)")
    return {
        "conversations": len(state),
        "messages": message_id,
        "huge_threads": list(range(1, huge + 1)),
        "huge_thread_size": HUGE_THREAD_SIZE,
        "channels": [c.pk for c in channels],
        "visible_channels": visible,
        "manager_token": token.key,
        "load_seconds": round(vacuum_started - started, 1),
        "search_vector_fill_seconds": vectors_seconds,
        "vacuum_analyze_seconds": round(time.monotonic() - vacuum_started, 1),
    }


def _thread_sizes(rng: random.Random, threads: int, messages: int) -> list[int]:
    """At least one message each; the rest by a heavy-tailed weight (capped at 3,000)."""
    if threads <= 0:
        return []
    extra = max(messages - threads, 0)
    weights = [min(rng.paretovariate(1.1), 400.0) for _ in range(threads)]
    total = sum(weights)
    sizes = [1 + int(extra * w / total) for w in weights]
    short = messages - sum(sizes)
    for index in rng.sample(range(threads), min(max(short, 0), threads)):
        sizes[index] += 1
    return [min(s, 3000) for s in sizes]
