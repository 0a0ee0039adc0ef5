"""The inbox list and the thread page are compiled once per shape (query_templates).

Each request must send PostgreSQL exactly the statement the ORM would have written for it, and
get the same rows back: compared for generated filter combinations, users and cursors, with
labels, assignees and attachments in the rows (the JSON columns and their converters).
"""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.db import connection
from django.http import QueryDict
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from communications import query_templates, selectors
from communications.api.params import encode_cursor
from communications.models import Attachment, ConversationLabel, Message
from crm.models import Label, Team
from tests import factories

pytestmark = pytest.mark.django_db


def built_every_time(shape, build, values, using="default"):
    return list(build(values))


def run(fn, *args, templated: bool, monkeypatch):
    """fn's result and the statements it sent, with or without query templates."""
    with monkeypatch.context() as patch:
        if not templated:
            patch.setattr(query_templates, "rows", built_every_time)
        with CaptureQueriesContext(connection) as queries:
            result = fn(*args)
    return result, [query["sql"] for query in queries.captured_queries]


def assert_same_as_the_orm(fn, *args, monkeypatch):
    run(fn, *args, templated=False, monkeypatch=monkeypatch)  # the user remembers its channels
    # Templates stay from earlier calls of the test: a shape key that misses something the
    # SQL depends on shows as an earlier request's statement sent for this one.
    first, first_sql = run(fn, *args, templated=True, monkeypatch=monkeypatch)
    again, again_sql = run(fn, *args, templated=True, monkeypatch=monkeypatch)
    built, built_sql = run(fn, *args, templated=False, monkeypatch=monkeypatch)
    assert again_sql == first_sql == built_sql
    assert again == first == built
    return built


@pytest.fixture(autouse=True)
def no_templates_yet():
    query_templates._templates.clear()


@pytest.fixture
def inbox(db, channel, manager):
    """Two channels the manager sees (one through a second team), one they do not; labels,
    an assignee, a team, archived and unread conversations, messages with attachments."""
    other_team = factories.TeamFactory()
    second = factories.ChannelFactory()
    second.teams.add(other_team)
    other_team.members.add(manager)
    hidden = factories.ChannelFactory()
    colleague = factories.UserFactory(username="colleague", first_name="Ada", last_name="Byron")
    team = Team.objects.first()
    labels = [Label.objects.create(name=name) for name in ("vip", "Refund", "b2b")]
    now = timezone.now()
    conversations = []
    for n in range(24):
        conversation = factories.ConversationFactory(
            channel=(channel, second, hidden)[n % 3],
            status=("open", "pending", "resolved")[n % 3 if n % 4 else 0],
            assignee=(None, manager, colleague)[(n // 2) % 3],
            team=team if n % 2 else None,
            unread_count=n % 3,
            is_archived=n % 7 == 0,
            # ties on the keyset's timestamp: the id decides
            last_message_at=now - timedelta(days=n // 2),
        )
        for label in labels[: n % 4]:
            ConversationLabel.objects.create(conversation=conversation, label=label)
        conversations.append(conversation)
    thread = conversations[1]
    messages = []
    for n in range(30):
        message = factories.MessageFactory(
            conversation=thread,
            created_at=now - timedelta(minutes=n // 3),
            sender_user=colleague if n % 4 == 0 else None,
        )
        if n % 5 == 0:
            item = Attachment(message=message, filename=f"f{n}.txt", mime_type="text/plain")
            item.file.save(f"f{n}.txt", ContentFile(b"x"), save=True)
        messages.append(message)
    superuser = get_user_model().objects.create_superuser("root-templates", password="x")
    return {
        "users": [manager, superuser, colleague],  # the colleague sees nothing
        "channels": [channel.pk, second.pk, hidden.pk],
        "labels": [label.pk for label in labels],
        "team": team.pk,
        "colleague": colleague.pk,
        "conversations": conversations,
        "thread": thread,
        "messages": messages,
        "day": (now - timedelta(days=3)).date().isoformat(),
    }


def list_params(inbox):
    conversations = inbox["conversations"]
    cursors = [encode_cursor(c.last_message_at, c.pk) for c in conversations[2:12:3]]
    optional = {
        "status": st.sampled_from(["open", "pending", "resolved"]),
        "channel": st.sampled_from([str(pk) for pk in inbox["channels"]]),
        "assignee": st.sampled_from(["me", "none", "unassigned", str(inbox["colleague"])]),
        "team": st.sampled_from([str(inbox["team"]), "none"]),
        "unread": st.sampled_from(["1", "0", "true"]),
        "label": st.sampled_from([str(pk) for pk in inbox["labels"]]),
        "archived": st.sampled_from(["true", "false"]),
        "from_date": st.just(inbox["day"]),
        "to_date": st.just(inbox["day"]),
        "cursor": st.sampled_from(cursors),
        "page_size": st.sampled_from(["1", "2", "5", "25"]),
        "q": st.sampled_from(["a", "chat"]),
    }
    return st.fixed_dictionaries({}, optional=optional)


def test_every_list_shape_sends_what_the_orm_writes(inbox, monkeypatch):
    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(params=list_params(inbox), user=st.sampled_from(inbox["users"]))
    def check(params, user):
        query = QueryDict(mutable=True)
        query.update(params)
        assert_same_as_the_orm(selectors.conversation_page, user, query, monkeypatch=monkeypatch)

    check()


def test_the_list_pages_through_with_labels_and_assignee_names(inbox, monkeypatch):
    manager = inbox["users"][0]
    seen, cursor = [], None
    while True:
        params = QueryDict(mutable=True)
        params["page_size"] = "3"
        if cursor:
            params["cursor"] = cursor
        page = assert_same_as_the_orm(
            selectors.conversation_page, manager, params, monkeypatch=monkeypatch
        )
        seen += page.items
        cursor = page.next_cursor
        if not cursor:
            break
    visible = [
        c
        for c in inbox["conversations"]
        if c.channel_id in inbox["channels"][:2] and not c.is_archived
    ]
    assert sorted(row["id"] for row in seen) == sorted(c.pk for c in visible)
    assert any(len(row["labels"]) == 3 for row in seen)
    assert all(isinstance(label, dict) for row in seen for label in row["labels"])
    assert {row.get("assignee_name") for row in seen} >= {"Ada Byron"}


def test_every_thread_page_sends_what_the_orm_writes(inbox, monkeypatch):
    thread, messages = inbox["thread"], inbox["messages"]
    cursors = [encode_cursor(m.created_at, m.pk) for m in messages[::4]]

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        size=st.sampled_from([None, "1", "7", "50"]),
        before=st.sampled_from([None, *cursors]),
    )
    def check(size, before):
        params = QueryDict(mutable=True)
        if size:
            params["page_size"] = size
        if before:
            params["before"] = before
        assert_same_as_the_orm(selectors.message_page, thread.pk, params, monkeypatch=monkeypatch)

    check()
    page = selectors.message_page(thread.pk, QueryDict())
    assert [row["id"] for row in page.items] == [
        m.pk for m in sorted(messages, key=lambda m: (m.created_at, m.pk), reverse=True)
    ]
    with_files = [row for row in page.items if row["attachments"]]
    assert len(with_files) == 6
    assert with_files[0]["attachments"][0]["mime_type"] == "text/plain"
    assert {row["sender_name"] for row in page.items} == {"", "Ada Byron"}


def test_a_shape_is_built_once_and_other_values_reuse_it(inbox, monkeypatch):
    built = []
    original = selectors.conversations_matching

    def counting(shape, values):
        built.append(dict(values))
        return original(shape, values)

    monkeypatch.setattr(selectors, "conversations_matching", counting)
    query_templates._templates.clear()
    manager = inbox["users"][0]
    first, second, hidden = inbox["channels"]
    selectors.visible_channel_ids(manager)  # remembered, as the token's statement leaves it
    with CaptureQueriesContext(connection) as queries:
        for pk in (first, second, hidden, first):
            selectors.conversation_page(manager, QueryDict(f"channel={pk}&status=open"))
    assert len(built) == 1  # with stand-ins, not with any of these ids
    assert built[0]["channel"] >= 2_000_000_000
    assert len(queries.captured_queries) == 4  # one statement per page, as before
    page = selectors.conversation_page(manager, QueryDict(f"channel={second}&status=open"))
    assert {row["channel__id"] for row in page.items} == {second}
    selectors.conversation_page(manager, QueryDict(f"channel={first}&status=pending"))
    assert len(built) == 2  # another status is another statement


@pytest.mark.parametrize(
    "params",
    [
        "q=chat",  # text: LIKE-escaped on its way, never a template's value
        "cursor=" + encode_cursor(timezone.now(), 2**40),  # outside int4: other SQL
    ],
)
def test_values_a_template_cannot_hold_build_the_query_every_time(inbox, monkeypatch, params):
    built = []
    original = selectors.conversations_matching
    monkeypatch.setattr(
        selectors,
        "conversations_matching",
        lambda shape, values: built.append(1) or original(shape, values),
    )
    query_templates._templates.clear()
    manager = inbox["users"][0]
    for _ in range(2):
        assert_same_as_the_orm(
            selectors.conversation_page, manager, QueryDict(params), monkeypatch=monkeypatch
        )
    assert len(built) == 8  # four runs each time (the ORM's twice, "templated" twice): no template
    assert query_templates._templates == {}


def test_a_naive_cursor_is_read_as_the_orm_reads_it(inbox, monkeypatch):
    messages = inbox["messages"]
    naive = timezone.make_naive(messages[9].created_at)
    params = QueryDict("page_size=5&before=" + encode_cursor(naive, messages[9].pk))
    with pytest.warns(RuntimeWarning, match="naive datetime"):
        page = assert_same_as_the_orm(
            selectors.message_page, inbox["thread"].pk, params, monkeypatch=monkeypatch
        )
    assert len(page.items) == 5


def test_a_statement_is_refused_a_queryset_that_is_not_values():
    from communications.models import Conversation

    with pytest.raises(TypeError, match="values"):
        query_templates.rows(
            ("x",), lambda values: Conversation.objects.filter(pk=values["id"]), {"id": 1}
        )


def test_a_user_without_channels_gets_an_empty_page_and_no_template(inbox, monkeypatch):
    colleague = get_user_model().objects.get(pk=inbox["colleague"])
    query_templates._templates.clear()
    page = assert_same_as_the_orm(
        selectors.conversation_page, colleague, QueryDict(), monkeypatch=monkeypatch
    )
    assert page.items == [] and page.next_cursor is None
    assert list(query_templates._templates.values()) == [query_templates._UNTEMPLATED]
    assert Message.objects.exists()


def test_the_threads_access_check_answers_as_before(inbox, monkeypatch):
    from django.http import Http404

    from communications.access import access_conversation_id, visible_channel_ids

    conversations = inbox["conversations"]
    ids = [c.pk for c in conversations[:6]] + [2**40, 0]
    User = get_user_model()
    for user_pk in (inbox["users"][0].pk, inbox["users"][1].pk, inbox["colleague"]):
        for remembered in (True, False):
            user = User.objects.get(pk=user_pk)
            if remembered:
                visible_channel_ids(user)  # as the token's statement leaves it
            for pk in ids:
                answers = []
                for templated in (True, True, False):

                    def check(pk=pk, user=user):
                        try:
                            return access_conversation_id(user, pk)
                        except Http404:
                            return "404"

                    answers.append(run(check, templated=templated, monkeypatch=monkeypatch))
                assert answers[0] == answers[1] == answers[2], (user.username, remembered, pk)
                conversation = next((c for c in conversations if c.pk == pk), None)
                sees = conversation is not None and (
                    user.is_superuser
                    or (
                        user.pk != inbox["colleague"]
                        and conversation.channel_id in inbox["channels"][:2]
                    )
                )
                assert answers[0][0] == (pk if sees else "404")


def test_long_id_lists_and_other_ids_never_share_a_stand_in(inbox, monkeypatch):
    """A manager may see thousands of channels: every id of every value gets its own stand-in,
    or one value would be written where another belongs."""
    from communications.models import Conversation

    conversations = inbox["conversations"]
    ids = [c.pk for c in conversations] + list(range(10_000, 12_500))
    values = {"ids": ids, "channel": conversations[0].channel_id, "after": 3}

    def build(values):
        return (
            Conversation.objects.filter(pk__in=values["ids"], channel_id=values["channel"])
            .filter(pk__gt=values["after"])
            .order_by("id")
            .values("id")[:50]
        )

    def query():
        return query_templates.rows(("long-lists",), build, values)

    rows = assert_same_as_the_orm(query, monkeypatch=monkeypatch)
    assert [row["id"] for row in rows] == sorted(
        c.pk for c in conversations if c.channel_id == values["channel"] and c.pk > 3
    )
