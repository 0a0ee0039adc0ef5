"""Canned responses: personal and team-wide, placeholders checked on save, filled on use."""

from communications.models import CannedResponse
from tests import factories

from .conftest import api_for


def test_unknown_placeholders_are_refused_naming_them(teams):
    api = api_for(teams["alice"])
    response = api.post(
        "/api/v1/canned-responses/",
        {"shortcut": "hi", "content": "Hi {{contact.nmae}}, {{ agent.name }} {{order.id}}"},
        format="json",
    )
    assert response.status_code == 400
    message = response.json()["content"][0]
    assert message.startswith("unknown placeholders {{contact.nmae}}, {{order.id}}: use ")
    assert not CannedResponse.objects.exists()


def test_personal_and_team_responses_rendered_for_a_conversation(teams, count_queries):
    conversation = teams["conversation"]
    conversation.contact.name = "Dana Scully"
    conversation.contact.save()
    alice, carol = api_for(teams["alice"]), api_for(teams["carol"])
    mine = alice.post(
        "/api/v1/canned-responses/",
        {"shortcut": "hello", "title": "Greeting", "content": "Hi {{contact.first_name}}!"},
        format="json",
    )
    assert mine.status_code == 201 and mine.json()["scope"] == "personal"
    shared = alice.post(
        "/api/v1/canned-responses/",
        {
            "shortcut": "ship",
            "content": "Dear {{contact.name}}, {{ agent.name }} here about #{{conversation.id}}.",
            "scope": "team",
            "team_id": teams["support"].pk,
        },
        format="json",
    )
    assert shared.status_code == 201
    assert shared.json()["team"] == {"id": teams["support"].pk, "name": "Support"}
    url = f"/api/v1/canned-responses/?conversation={conversation.pk}"
    with count_queries() as queries:
        rows = carol.get(url).json()["results"]
    # token with carol's channels, her teams + responses (one query), the conversation
    assert queries.count == 3, queries.explain()
    assert [(r["shortcut"], r["rendered"]) for r in rows] == [
        ("ship", f"Dear Dana Scully, Carol Diaz here about #{conversation.pk}.")
    ]  # alice's personal one is hers alone
    rows = alice.get(url + "&q=hel").json()["results"]
    assert [(r["shortcut"], r["rendered"]) for r in rows] == [("hello", "Hi Dana!")]
    assert alice.get("/api/v1/canned-responses/").json()["results"][0]["rendered"] is None
    # bob (another team) sees neither, cannot render for a foreign conversation
    bob = api_for(teams["bob"])
    assert bob.get("/api/v1/canned-responses/").json()["results"] == []
    assert bob.get(url).status_code == 404
    assert (
        bob.patch(
            f"/api/v1/canned-responses/{shared.json()['id']}/", {"content": "x"}, format="json"
        ).status_code
        == 404
    )


def test_team_scope_must_be_ones_own_team_and_shortcuts_are_unique_per_scope(teams):
    api = api_for(teams["alice"])
    body = {"shortcut": "x", "content": "x", "scope": "team", "team_id": teams["sales"].pk}
    response = api.post("/api/v1/canned-responses/", body, format="json")
    assert response.status_code == 400 and "team_id" in response.json()
    assert (
        api.post(
            "/api/v1/canned-responses/", {"shortcut": "x", "content": "a"}, format="json"
        ).status_code
        == 201
    )
    again = api.post("/api/v1/canned-responses/", {"shortcut": "x", "content": "b"}, format="json")
    assert again.status_code == 409 and "/x" in again.json()["detail"]


def test_edit_and_delete(teams):
    api = api_for(teams["alice"])
    created = api.post(
        "/api/v1/canned-responses/", {"shortcut": "a", "content": "a"}, format="json"
    ).json()
    url = f"/api/v1/canned-responses/{created['id']}/"
    bad = api.patch(url, {"content": "{{contact.email}}"}, format="json")
    assert bad.status_code == 400 and "{{contact.email}}" in bad.json()["content"][0]
    good = api.patch(url, {"content": "Bye {{contact.name}}"}, format="json")
    assert good.json()["content"] == "Bye {{contact.name}}"
    assert api.delete(url).status_code == 204
    assert api.delete(url).status_code == 404


def test_admin_form_refuses_unknown_placeholders(teams, client):
    client.force_login(factories.UserFactory(username="boss", is_staff=True, is_superuser=True))
    url = "/admin/communications/cannedresponse/add/"
    form = {
        "shortcut": "x",
        "title": "",
        "content": "Hi {{contact.nickname}}",
        "team": teams["support"].pk,
    }
    response = client.post(url, form)
    assert response.status_code == 200
    assert "unknown placeholder {{contact.nickname}}" in response.content.decode()
    form["content"] = "Hi {{contact.name}}"
    assert client.post(url, form).status_code == 302
    both = {**form, "shortcut": "y", "owner": teams["alice"].pk}
    assert "not both" in client.post(url, both).content.decode()
