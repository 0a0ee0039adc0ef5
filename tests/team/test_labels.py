"""Labels: create, add / remove (thread, bulk, admin), filter, payloads, events, races."""

import json
import threading

import pytest
from django.db import connections

from communications import events
from communications.models import Activity, Conversation, ConversationLabel, RealtimeEvent
from communications.services.labels import bulk_change_conversation_labels
from crm.models import Label
from tests import factories

from .conftest import api_for


def test_a_manager_creates_a_label_once_whatever_the_case(teams):
    api = api_for(teams["alice"])
    first = api.post("/api/v1/labels/", {"name": "VIP", "color": "#2563eb"}, format="json")
    assert first.status_code == 201
    assert first.json() == {"id": first.json()["id"], "name": "VIP", "color": "#2563eb"}
    again = api.post("/api/v1/labels/", {"name": "vip"}, format="json")
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    bad = api.post("/api/v1/labels/", {"name": "x", "color": "blue"}, format="json")
    assert bad.status_code == 400 and "#RRGGBB" in bad.json()["color"][0]
    listed = api.get("/api/v1/labels/").json()["results"]
    assert [label["name"] for label in listed] == ["VIP"]


def test_only_staff_rename_or_delete_labels(teams):
    label = Label.objects.create(name="refund")
    api = api_for(teams["alice"])
    assert api.patch(f"/api/v1/labels/{label.pk}/", {"name": "r"}, format="json").status_code == 403
    teams["alice"].is_staff = True
    teams["alice"].save()
    renamed = api.patch(f"/api/v1/labels/{label.pk}/", {"color": "#dc2626"}, format="json")
    assert renamed.status_code == 200 and renamed.json()["color"] == "#dc2626"
    assert api.delete(f"/api/v1/labels/{label.pk}/").status_code == 204


def test_adding_a_label_changes_the_payload_writes_a_line_and_tells_viewers_after_commit(
    teams, django_capture_on_commit_callbacks
):
    vip, refund = Label.objects.create(name="vip"), Label.objects.create(name="Refund")
    conversation = teams["conversation"]
    url = f"/api/v1/conversations/{conversation.pk}/labels/"
    api = api_for(teams["alice"])
    with django_capture_on_commit_callbacks() as callbacks:
        response = api.post(url, {"add": [vip.pk, refund.pk]}, format="json")
    assert response.status_code == 200
    assert [label["name"] for label in response.json()["labels"]] == ["Refund", "vip"]
    assert len(callbacks) == 1  # one broadcast: the update and its activity line
    stored = list(RealtimeEvent.objects.filter(conversation_id=conversation.pk).order_by("id"))
    assert [e.type for e in stored] == [events.CONVERSATION_UPDATED, "activity.created"]
    assert [label["name"] for label in stored[0].payload["labels"]] == ["Refund", "vip"]
    assert stored[1].payload["text"] == "Alice Ng added labels Refund, vip"
    assert stored[0].payload["version"] == 2

    # adding it again changes nothing: no line, no event
    with django_capture_on_commit_callbacks() as callbacks:
        again = api.post(url, {"add": [vip.pk]}, format="json")
    assert again.status_code == 200 and callbacks == []
    assert again.json()["version"] == 2

    removed = api.post(url, {"remove": [vip.pk]}, format="json")
    assert [label["name"] for label in removed.json()["labels"]] == ["Refund"]
    lines = Activity.objects.filter(conversation=conversation).order_by("id")
    assert [a.verb for a in lines] == ["labels", "labels"]
    assert api.get(f"/api/v1/conversations/{conversation.pk}/").json()["labels"] == [
        {"id": refund.pk, "name": "Refund", "color": refund.color}
    ]


def test_an_unknown_label_is_a_400_naming_it_and_nothing_changes(teams):
    conversation = teams["conversation"]
    response = api_for(teams["alice"]).post(
        f"/api/v1/conversations/{conversation.pk}/labels/", {"add": [999999]}, format="json"
    )
    assert response.status_code == 400
    assert response.json() == {"add": ["no label with id 999999"]}
    assert not ConversationLabel.objects.exists()


def test_another_teams_conversation_cannot_be_labelled(teams):
    label = Label.objects.create(name="vip")
    api = api_for(teams["alice"])
    foreign = teams["foreign"]
    response = api.post(
        f"/api/v1/conversations/{foreign.pk}/labels/", {"add": [label.pk]}, format="json"
    )
    assert response.status_code == 404
    bulk = api.post(
        "/api/v1/conversations/labels/",
        {"conversation_ids": [teams["conversation"].pk, foreign.pk], "add": [label.pk]},
        format="json",
    )
    assert bulk.status_code == 404 and str(foreign.pk) in bulk.json()["detail"]
    assert not ConversationLabel.objects.exists()  # all or nothing
    contact = api.post(
        f"/api/v1/contacts/{foreign.contact_id}/labels/", {"add": [label.pk]}, format="json"
    )
    assert contact.status_code == 404


def test_bulk_labelling_from_the_api(teams):
    label = Label.objects.create(name="vip")
    more = factories.ConversationFactory.create_batch(3, channel=teams["shop"])
    ids = [c.pk for c in more]
    api = api_for(teams["alice"])
    response = api.post(
        "/api/v1/conversations/labels/", {"conversation_ids": ids, "add": [label.pk]}, format="json"
    )
    assert response.json() == {"changed": 3}
    assert ConversationLabel.objects.filter(label=label).count() == 3
    assert Activity.objects.filter(verb="labels").count() == 3


def test_filter_the_list_by_label_with_labels_in_each_row(teams):
    vip = Label.objects.create(name="vip")
    labelled = teams["conversation"]
    ConversationLabel.objects.create(conversation=labelled, label=vip)
    factories.ConversationFactory(channel=teams["shop"])
    api = api_for(teams["alice"])
    rows = api.get(f"/api/v1/conversations/?label={vip.pk}").json()["results"]
    assert [row["id"] for row in rows] == [labelled.pk]
    assert rows[0]["labels"] == [{"id": vip.pk, "name": "vip", "color": vip.color}]
    everything = api.get("/api/v1/conversations/").json()["results"]
    assert len(everything) == 2 and {len(r["labels"]) for r in everything} == {0, 1}
    bad = api.get("/api/v1/conversations/?label=abc")
    assert bad.status_code == 400 and "label" in bad.json()


def test_the_labelled_list_costs_the_same_queries_whatever_the_labels(teams, count_queries):
    labels = [Label.objects.create(name=f"l{n}") for n in range(5)]
    api = api_for(teams["alice"])

    def fill(count):
        for _ in range(count):
            conversation = factories.ConversationFactory(channel=teams["shop"])
            ConversationLabel.objects.bulk_create(
                [ConversationLabel(conversation=conversation, label=label) for label in labels]
            )

    fill(2)
    with count_queries() as few:
        assert len(api.get("/api/v1/conversations/?page_size=100").json()["results"]) == 3
    fill(30)
    with count_queries() as many:
        rows = api.get("/api/v1/conversations/?page_size=100").json()["results"]
    assert len(rows) == 33 and sum(len(r["labels"]) for r in rows) == 160
    # token with the manager's channels, the page (labels as a JSON array per row, same query)
    assert few.count == many.count == 2, many.explain()
    with count_queries() as filtered:
        api.get(f"/api/v1/conversations/?label={labels[0].pk}&page_size=100")
    assert filtered.count == 2, filtered.explain()  # the label's filter is in the page query


def test_contact_labels_show_on_the_card(teams):
    label = Label.objects.create(name="wholesale")
    conversation = teams["conversation"]
    api = api_for(teams["alice"])
    response = api.post(
        f"/api/v1/contacts/{conversation.contact_id}/labels/", {"add": [label.pk]}, format="json"
    )
    assert response.status_code == 200
    assert [label["name"] for label in response.json()["labels"]] == ["wholesale"]
    detail = api.get(f"/api/v1/conversations/{conversation.pk}/").json()
    assert [label["name"] for label in detail["contact"]["labels"]] == ["wholesale"]


def test_admin_bulk_label_action(teams, client):
    admin = factories.UserFactory(username="boss", is_staff=True, is_superuser=True)
    client.force_login(admin)
    label = Label.objects.create(name="vip")
    ids = [teams["conversation"].pk, teams["foreign"].pk]
    url = "/admin/communications/conversation/"
    response = client.post(
        url, {"action": "add_label", "_selected_action": ids, "label": label.pk}, follow=True
    )
    assert "Label vip added to 2 conversation(s)." in response.content.decode()
    assert ConversationLabel.objects.count() == 2
    client.post(url, {"action": "remove_label", "_selected_action": ids, "label": label.pk})
    assert ConversationLabel.objects.count() == 0
    assert Activity.objects.filter(actor=admin, verb="labels").count() == 4
    nothing = client.post(url, {"action": "add_label", "_selected_action": ids}, follow=True)
    assert "choose a label" in nothing.content.decode()


@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_adds_of_one_label_make_one_link():
    channel = factories.ChannelFactory()
    conversation = factories.ConversationFactory(channel=channel)
    label = Label.objects.create(name="vip")
    start = threading.Barrier(50)
    changed = []
    errors = []

    def add():
        try:
            start.wait()
            changed.append(bulk_change_conversation_labels([conversation.pk], add=[label]))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=add) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert ConversationLabel.objects.filter(conversation=conversation, label=label).count() == 1
    assert sorted(changed) == [0] * 49 + [1]
    assert Activity.objects.filter(conversation=conversation).count() == 1
    assert Conversation.objects.get(pk=conversation.pk).version == 2


def test_the_inbox_page_starts_filtered_by_label(teams, client):
    vip = Label.objects.create(name="vip")
    ConversationLabel.objects.create(conversation=teams["conversation"], label=vip)
    factories.ConversationFactory(channel=teams["shop"])
    client.force_login(teams["alice"])
    html = client.get(f"/inbox/?label={vip.pk}").content.decode()
    start = html.index('id="inbox-bootstrap"')
    data = json.loads(html[html.index(">", start) + 1 : html.index("</script>", start)])
    assert [row["id"] for row in data["conversations"]] == [teams["conversation"].pk]
    assert data["filters"] == {"label": str(vip.pk)}
    assert data["labels"] == [{"id": vip.pk, "name": "vip", "color": vip.color}]
