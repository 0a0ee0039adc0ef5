"""@mentions in private notes: who can be mentioned, what they get, the Mentions list."""

import pytest

from communications.models import Mention, Message, RealtimeEvent
from communications.services import mentions as mentions_module
from tests import factories

from .conftest import api_for


def note(api, conversation, text, client_id):
    return api.post(
        f"/api/v1/conversations/{conversation.pk}/messages/",
        {"client_id": client_id, "content": text, "kind": "note"},
        format="json",
    )


def test_a_note_mentions_a_teammate_even_when_assigned_to_someone_else(
    teams, django_capture_on_commit_callbacks, monkeypatch
):
    conversation = teams["conversation"]
    conversation.assignee = teams["alice"]
    conversation.save()
    hooked = []
    monkeypatch.setattr(mentions_module, "on_mention", lambda user, msg: hooked.append((user, msg)))
    with django_capture_on_commit_callbacks(execute=True):
        response = note(
            api_for(teams["alice"]),
            conversation,
            "@carol can you check the refund? cc @bob @nobody alice@example.com @alice",
            "n-1",
        )
    assert response.status_code == 201
    body = response.json()
    # bob is in another team (cannot see it), nobody does not exist, alice wrote it
    assert body["metadata"]["mentions"] == [
        {"id": teams["carol"].pk, "username": "carol", "name": "Carol Diaz"}
    ]
    mention = Mention.objects.get()
    assert (mention.user, mention.message_id, mention.read_at) == (teams["carol"], body["id"], None)
    event = RealtimeEvent.objects.get(type="mention.created")
    assert (event.user_id, event.channel_id) == (teams["carol"].pk, None)
    assert event.payload["message"]["content"].startswith("@carol can you")
    assert event.payload["message"]["sender_name"] == "Alice Ng"
    assert event.payload["conversation"]["id"] == conversation.pk
    assert [(user.username, msg.pk) for user, msg in hooked] == [("carol", body["id"])]
    # a note is never sent to the customer
    assert Message.objects.get(pk=body["id"]).status == Message.Status.SENT
    assert Message.objects.get(pk=body["id"]).send_attempts == 0


def test_a_reply_to_the_customer_mentions_nobody(teams):
    response = api_for(teams["alice"]).post(
        f"/api/v1/conversations/{teams['conversation'].pk}/messages/",
        {"client_id": "r-1", "content": "@carol hello"},
        format="json",
    )
    assert response.status_code == 201
    assert not Mention.objects.exists()
    assert "mentions" not in response.json()["metadata"]


def test_a_note_in_another_teams_conversation_is_a_404(teams):
    response = note(api_for(teams["alice"]), teams["foreign"], "@bob look", "n-x")
    assert response.status_code == 404
    assert not Mention.objects.exists() and not Message.objects.exists()


def test_mentionable_managers_are_the_channels_team(teams):
    api = api_for(teams["alice"])
    rows = api.get(f"/api/v1/conversations/{teams['conversation'].pk}/mentionable/").json()
    assert [r["username"] for r in rows["results"]] == ["alice", "carol"]
    assert api.get(f"/api/v1/conversations/{teams['foreign'].pk}/mentionable/").status_code == 404


def test_mentions_list_unread_first_and_mark_read(teams, count_queries):
    alice, carol = api_for(teams["alice"]), api_for(teams["carol"])
    conversation = teams["conversation"]
    for n in range(4):
        note(alice, conversation, f"@carol note {n}", f"n-{n}")
    first = Mention.objects.order_by("id").first()
    mark = carol.post("/api/v1/mentions/read/", {"ids": [first.pk]}, format="json").json()
    assert mark == {"marked": [first.pk], "unread_count": 3}
    with count_queries() as queries:
        page = carol.get("/api/v1/mentions/?page_size=2").json()
    # token with channels, unread page, unread count
    assert queries.count == 3, queries.explain()
    assert [r["message"]["content"] for r in page["results"]] == ["@carol note 3", "@carol note 2"]
    assert page["unread_count"] == 3
    rest = carol.get(f"/api/v1/mentions/?page_size=2&cursor={page['next_cursor']}").json()
    # the last unread one, then the read one
    assert [r["message"]["content"] for r in rest["results"]] == ["@carol note 1", "@carol note 0"]
    assert rest["results"][1]["read_at"] is not None
    assert rest["next_cursor"] is None
    unread = carol.get("/api/v1/mentions/?unread=true").json()
    assert len(unread["results"]) == 3
    assert carol.get("/api/v1/mentions/?cursor=zzz").status_code == 400
    everything = carol.post("/api/v1/mentions/read/", {}, format="json").json()
    assert everything["unread_count"] == 0 and len(everything["marked"]) == 3
    assert (
        RealtimeEvent.objects.filter(type="mentions.read", user_id=teams["carol"].pk).count() == 2
    )
    # alice has none, and cannot mark carol's
    assert api_for(teams["alice"]).get("/api/v1/mentions/").json()["results"] == []


def test_mentions_of_a_conversation_the_user_can_no_longer_see_are_hidden(teams):
    note(api_for(teams["alice"]), teams["conversation"], "@carol hi", "n-1")
    teams["support"].members.remove(teams["carol"])
    factories.TeamFactory().members.add(teams["carol"])
    body = api_for(teams["carol"]).get("/api/v1/mentions/").json()
    assert body == {"results": [], "next_cursor": None, "unread_count": 0}


@pytest.mark.parametrize(
    "text,names",
    [
        ("@carol, please", ["carol"]),
        ("(@carol) and @bob.", ["carol", "bob"]),
        ("mail me at a@carol.com", []),
        ("@carol @carol", ["carol"]),
    ],
)
def test_mentioned_usernames(text, names):
    assert mentions_module.mentioned_usernames(text) == names
