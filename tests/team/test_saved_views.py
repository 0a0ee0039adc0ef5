"""Saved views through /api/v1/views/ (issue 14 item 8): filters checked by the list's own
parser, private or shared with one of the owner's teams, changed only by the owner or staff,
with exact query counts; the list a view opens and its count agree."""

import pytest

from communications.models import RealtimeEvent
from communications.pages import inbox_counts
from communications.saved_views.models import SavedView
from crm.models import Label
from tests import factories

from .conftest import api_for

pytestmark = pytest.mark.django_db


def create(api, name="Open mine", filters=None, **extra):
    body = {"name": name, "filters": filters if filters is not None else {"status": "open"}}
    return api.post("/api/v1/views/", body | extra, format="json")


def test_a_view_is_saved_in_the_lists_canonical_form(teams):
    label = _label("VIP")
    response = create(
        api_for(teams["alice"]),
        filters={
            "status": "open",
            "channel": str(teams["shop"].pk),
            "assignee": "unassigned",
            "team": teams["support"].pk,
            "label": label.pk,
            "unread": "true",
        },
    )
    assert response.status_code == 201, response.json()
    view = response.json()
    assert view["filters"] == {
        "status": "open",
        "channel": teams["shop"].pk,
        "assignee": "none",
        "team": teams["support"].pk,
        "label": label.pk,
        "unread": True,
    }
    assert view["params"] == {
        "status": "open",
        "channel": str(teams["shop"].pk),
        "assignee": "none",
        "team": str(teams["support"].pk),
        "label": str(label.pk),
        "unread": "true",
    }
    assert view["shared"] is False and view["team"] is None and view["can_edit"] is True
    assert view["owner"] == {"id": teams["alice"].pk, "name": "Alice Ng"}
    # unread: false is no filter at all, as in the list
    quiet = create(api_for(teams["alice"]), name="All", filters={"unread": False}).json()
    assert quiet["filters"] == {} and quiet["params"] == {}


def _label(name):
    return Label.objects.create(name=name, color="#2563eb")


@pytest.mark.parametrize(
    ("filters", "errors"),
    [
        (
            {"status": "open", "q": "desk", "foo": 1},
            {
                "filters": [
                    "unknown filter 'q', 'foo': a view holds status, channel, assignee, team, "
                    "label, unread"
                ]
            },
        ),
        (
            {"status": "closed"},
            {"filters": {"status": ["must be one of open, pending, snoozed, resolved"]}},
        ),
        ({"channel": "shop"}, {"filters": {"channel": ["'shop' is not an id"]}}),
        ({"assignee": "someone"}, {"filters": {"assignee": ["'someone' is not an id"]}}),
        (
            {"unread": "maybe"},
            {"filters": {"unread": ["'maybe' is not a boolean: use true or false"]}},
        ),
        ({"label": 99999}, {"filters": {"label": ["no label 99999"]}}),
        ({"team": 99999}, {"filters": {"team": ["no team 99999"]}}),
        ({"assignee": 99999}, {"filters": {"assignee": ["no active user 99999"]}}),
        ({"status": ["open"]}, {"filters": {"status": ["['open'] is not a value of status"]}}),
        ({"label": True}, {"filters": {"label": ["true is not a value of label"]}}),
    ],
)
def test_unknown_filter_keys_and_values_are_400s_naming_them(teams, filters, errors):
    response = create(api_for(teams["alice"]), filters=filters)
    assert response.status_code == 400
    assert response.json() == errors
    assert not SavedView.objects.exists()


def test_a_channel_one_cannot_see_a_foreign_team_and_a_taken_name_are_refused(teams):
    alice = api_for(teams["alice"])
    response = create(alice, filters={"channel": teams["other"].pk})
    assert response.status_code == 400
    assert response.json() == {
        "filters": {"channel": [f"no channel {teams['other'].pk} that you can see"]}
    }
    response = create(alice, team_id=teams["sales"].pk)
    assert response.status_code == 400
    assert response.json() == {
        "team_id": [f"team {teams['sales'].pk} is not one of the owner's teams"]
    }
    assert create(alice, name="Open mine").status_code == 201
    again = create(alice, name="  open MINE ")
    assert again.status_code == 400
    assert again.json() == {"name": ["you already have a view named 'open MINE'"]}
    assert create(alice, name="   ").json() == {"name": ["This field may not be blank."]}
    assert create(api_for(teams["carol"]), name="Open mine").status_code == 201  # her own
    not_object = alice.post("/api/v1/views/", {"name": "x", "filters": ["open"]}, format="json")
    assert not_object.status_code == 400 and "filters" in not_object.json()


def test_who_sees_and_who_may_change_a_view(teams):
    alice, carol, bob = (api_for(teams[n]) for n in ("alice", "carol", "bob"))
    private = create(alice, name="Mine").json()
    shared = create(
        alice, name="Support unread", filters={"unread": True}, team_id=teams["support"].pk
    )
    assert shared.status_code == 201
    shared = shared.json()
    assert shared["shared"] is True and shared["team"] == {
        "id": teams["support"].pk,
        "name": "Support",
    }

    names = lambda api: [v["name"] for v in api.get("/api/v1/views/").json()["results"]]  # noqa: E731
    assert names(alice) == ["Mine", "Support unread"]
    assert names(carol) == ["Support unread"]  # a team member sees the team's view only
    assert names(bob) == []
    # someone else's private view, or a team view outside the team: 404, never 403
    for api, view in ((carol, private), (bob, private), (bob, shared)):
        url = f"/api/v1/views/{view['id']}/"
        assert api.get(url).status_code == 404
        assert api.patch(url, {"name": "x"}, format="json").status_code == 404
        assert api.delete(url).status_code == 404
    # a member sees the team view but may not change it
    url = f"/api/v1/views/{shared['id']}/"
    assert carol.get(url).json()["can_edit"] is False
    refused = carol.patch(url, {"name": "Carol's now"}, format="json")
    assert refused.status_code == 403
    assert refused.json() == {"detail": "only the view's owner or staff may change it"}
    assert carol.delete(url).status_code == 403
    # staff may
    teams["carol"].is_staff = True
    teams["carol"].save()
    renamed = carol.patch(url, {"name": "Unread (support)"}, format="json")
    assert renamed.status_code == 200 and renamed.json()["name"] == "Unread (support)"
    # the owner makes it private again: carol no longer sees it
    assert alice.patch(url, {"team_id": None}, format="json").json()["shared"] is False
    assert carol.get(url).status_code == 404
    assert alice.delete(url).status_code == 204
    assert names(alice) == ["Mine"]


def test_view_changes_reach_the_owner_and_the_teams_sockets(teams):
    alice = api_for(teams["alice"])
    view = create(alice, name="Team", team_id=teams["support"].pk).json()
    rows = RealtimeEvent.objects.filter(type="views.changed").order_by("user_id")
    assert sorted(rows.values_list("user_id", flat=True)) == sorted(
        [teams["alice"].pk, teams["carol"].pk]
    )
    assert rows[0].payload == {"id": view["id"], "deleted": False, "updated_at": view["updated_at"]}
    RealtimeEvent.objects.all().delete()
    alice.delete(f"/api/v1/views/{view['id']}/")
    assert {r.payload["deleted"] for r in RealtimeEvent.objects.filter(type="views.changed")} == {
        True
    }
    assert RealtimeEvent.objects.filter(type="views.changed").count() == 2


def test_api_query_counts_are_fixed(teams, count_queries):
    alice = api_for(teams["alice"])
    label = _label("VIP")
    body = {
        "name": "VIP open",
        "filters": {"status": "open", "channel": teams["shop"].pk, "label": label.pk},
        "team_id": teams["support"].pk,
    }
    with count_queries() as queries:
        response = alice.post("/api/v1/views/", body, format="json")
    assert response.status_code == 201
    # token with the visible channels, the label, the owner's team; savepoint, INSERT, the
    # team's members and the events' INSERT (views.changed), release
    assert queries.count == 8, queries.explain()
    view_id = response.json()["id"]
    for n in range(5):
        create(alice, name=f"View {n}", team_id=teams["support"].pk if n % 2 else None)
    for api in (alice, api_for(teams["carol"])):
        with count_queries() as queries:
            rows = api.get("/api/v1/views/").json()["results"]
        assert queries.count == 2, queries.explain()  # token, the views (owner, team joined)
        assert rows
    url = f"/api/v1/views/{view_id}/"
    with count_queries() as queries:
        assert alice.get(url).status_code == 200
    assert queries.count == 2, queries.explain()  # token, the view
    with count_queries() as queries:
        assert alice.patch(url, {"name": "VIP"}, format="json").status_code == 200
    # token, the view; savepoint, UPDATE, the team's members, the events' INSERT, release
    assert queries.count == 7, queries.explain()
    with count_queries() as queries:
        assert alice.delete(url).status_code == 204
    # token, the view; savepoint, DELETE, members, events, release
    assert queries.count == 7, queries.explain()


def test_a_views_list_and_its_count_agree(teams):
    shop = teams["shop"]
    alice = teams["alice"]
    for status, unread in (("open", 1), ("open", 0), ("resolved", 1), ("open", 3)):
        factories.ConversationFactory(channel=shop, status=status, unread_count=unread)
    factories.ConversationFactory(channel=shop, status="open", unread_count=2, is_archived=True)
    factories.ConversationFactory(channel=teams["other"], status="open", unread_count=1)
    api = api_for(alice)
    view = create(api, name="Open unread", filters={"status": "open", "unread": True}).json()
    listed = api.get("/api/v1/conversations/", view["params"]).json()["results"]
    counted = inbox_counts(alice)["views"][str(view["id"])]
    assert len(listed) == counted == 2
