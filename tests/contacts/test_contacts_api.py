"""The contacts API: search in any phone formatting, access, typed custom attributes, the
audit row and the realtime event of an edit, exact query counts."""

import pytest
from rest_framework.test import APIClient

from communications import events
from communications.models import Activity, Message, RealtimeEvent
from communications.serializers import ACTIVITY_COLUMNS, activity_text
from crm.models import ContactLabel, CustomAttributeDefinition, Label
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def definitions(db):
    return {
        "company": CustomAttributeDefinition.objects.create(key="company", name="Company"),
        "points": CustomAttributeDefinition.objects.create(
            key="points", name="Loyalty points", type="number", position=1
        ),
        "birthday": CustomAttributeDefinition.objects.create(
            key="birthday", name="Birthday", type="date", position=2
        ),
        "tier": CustomAttributeDefinition.objects.create(
            key="tier", name="Tier", type="list", options=["Bronze", "Gold"], position=3
        ),
    }


@pytest.fixture
def ana(channel):
    conversation = factories.ConversationFactory(
        channel=channel,
        contact__name="Ana Lima",
        contact__phone="+1 555-123-4567",
        contact__email="ana@example.com",
    )
    return conversation.contact


def names(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["name"] for row in response.json()["results"]]


@pytest.mark.parametrize(
    "q", ["+1 555-123-4567", "15551234567", "(555) 123 4567", "555.123", "4567", "Ana", "ana@ex"]
)
def test_search_by_phone_in_any_formatting_name_or_email(api, channel, ana, q):
    factories.ConversationFactory(
        channel=channel, contact__name="Bob", contact__phone="+44 20 7946 0000"
    )
    assert names(api.get("/api/v1/contacts/", {"q": q})) == ["Ana Lima"]


def test_list_without_q_is_every_visible_contact_newest_first_in_pages(api, channel, ana):
    others = [factories.ConversationFactory(channel=channel).contact for _ in range(3)]
    first = api.get("/api/v1/contacts/", {"page_size": 2}).json()
    assert [row["id"] for row in first["results"]] == [others[2].pk, others[1].pk]
    assert first["results"][0]["latest_conversation_id"] is not None
    second = api.get("/api/v1/contacts/", {"page_size": 2, "cursor": first["next_cursor"]}).json()
    assert [row["id"] for row in second["results"]] == [others[0].pk, ana.pk]
    assert second["next_cursor"] is None


def test_a_manager_sees_only_contacts_of_their_channels(api, channel, ana):
    foreign = factories.ConversationFactory(contact__name="Ana Other").contact
    assert names(api.get("/api/v1/contacts/", {"q": "Ana"})) == ["Ana Lima"]
    assert api.get(f"/api/v1/contacts/{foreign.pk}/").status_code == 404
    response = api.patch(f"/api/v1/contacts/{foreign.pk}/", {"name": "x"}, format="json")
    assert response.status_code == 404
    foreign.refresh_from_db()
    assert foreign.name == "Ana Other"
    # A contact with conversations on two channels is listed once.
    factories.ConversationFactory(channel=channel, contact=ana)
    assert names(api.get("/api/v1/contacts/")) == ["Ana Lima"]


def test_a_superuser_sees_every_contact(ana):
    admin = factories.UserFactory(is_superuser=True, is_staff=True)
    factories.ConversationFactory(contact__name="Ana Other")
    client = APIClient()
    client.force_authenticate(admin)
    assert sorted(names(client.get("/api/v1/contacts/", {"q": "ana"}))) == ["Ana Lima", "Ana Other"]


def test_bad_parameters_are_400s_naming_them(api):
    assert "cursor" in api.get("/api/v1/contacts/", {"cursor": "nope"}).json()
    assert "page_size" in api.get("/api/v1/contacts/", {"page_size": 0}).json()
    assert "q" in api.get("/api/v1/contacts/", {"q": "x" * 201}).json()


@pytest.mark.parametrize("page_size", [2, 25])
def test_list_query_count_does_not_grow_with_the_page(api, channel, count_queries, page_size):
    for _ in range(5):
        factories.ConversationFactory(channel=channel)
    with count_queries() as queries:
        response = api.get("/api/v1/contacts/", {"page_size": page_size, "q": "a"})
    assert response.status_code == 200
    # token with the manager's channels, the page (ids chosen in a subquery)
    assert queries.count == 2, queries.explain()


def test_detail_has_conversations_across_channels_orders_labels_notes_attributes(
    api, channel, manager, ana, definitions, count_queries
):
    other_channel = factories.ChannelFactory(kind="email", name="Mail")
    other_channel.teams.add(manager.teams.first())
    email = factories.ConversationFactory(channel=other_channel, contact=ana, subject="Invoice")
    hidden = factories.ConversationFactory(contact=ana)  # a channel the manager cannot see
    factories.MessageFactory(
        conversation=email,
        kind=Message.Kind.NOTE,
        direction="out",
        content="VIP, be quick",
        sender_user=manager,
    )
    factories.MessageFactory(
        conversation=hidden, kind=Message.Kind.NOTE, direction="out", content="secret"
    )
    factories.OrderFactory.create_batch(2, contact=ana)
    ContactLabel.objects.create(contact=ana, label=Label.objects.create(name="vip"))
    ana.custom_attributes = {"points": 12, "tier": "Gold"}
    ana.save()
    with count_queries() as queries:
        body = api.get(f"/api/v1/contacts/{ana.pk}/").json()
    # token with channels, the contact (labels and definitions inside), orders, conversations,
    # notes
    assert queries.count == 5, queries.explain()
    assert {c["channel"]["kind"] for c in body["conversations"]} == {"api", "email"}
    assert hidden.pk not in [c["id"] for c in body["conversations"]]
    assert [n["content"] for n in body["notes"]] == ["VIP, be quick"]
    assert body["notes"][0]["author"] == (manager.get_full_name() or manager.username)
    assert len(body["orders"]) == 2 and [label["name"] for label in body["labels"]] == ["vip"]
    assert [(a["key"], a["type"], a["value"]) for a in body["custom_attributes"]] == [
        ("company", "text", None),
        ("points", "number", 12),
        ("birthday", "date", None),
        ("tier", "list", "Gold"),
    ]
    assert body["custom_attributes"][3]["options"] == ["Bronze", "Gold"]


def test_patch_validates_each_attribute_by_type_and_names_it(api, ana, definitions):
    response = api.patch(
        f"/api/v1/contacts/{ana.pk}/",
        {
            "custom_attributes": {
                "points": "abc",
                "tier": "Platinum",
                "birthday": "2026-02-30",
                "nope": 1,
            },
            "email": "not-mail",
        },
        format="json",
    )
    assert response.status_code == 400
    errors = response.json()
    assert "must be a number" in errors["custom_attributes"]["points"][0]
    assert "Loyalty points" in errors["custom_attributes"]["points"][0]
    assert "Bronze, Gold" in errors["custom_attributes"]["tier"][0]
    assert "YYYY-MM-DD" in errors["custom_attributes"]["birthday"][0]
    assert "not a custom attribute" in errors["custom_attributes"]["nope"][0]
    assert "email" in errors
    ana.refresh_from_db()
    assert ana.custom_attributes == {} and ana.email == "ana@example.com"  # nothing written
    assert not Activity.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        [1, 2],
        {"name": 5},
        {"custom_attributes": ["points"]},
        {"custom_attributes": {"points": True}},
        {"custom_attributes": {"company": {"a": 1}}},
        {"custom_attributes": {"points": "1e400"}},
        {"created_at": "2020-01-01"},
    ],
)
def test_other_bad_bodies_are_400s(api, ana, definitions, body):
    response = api.patch(f"/api/v1/contacts/{ana.pk}/", body, format="json")
    assert response.status_code == 400, response.content


def test_patch_stores_typed_values_writes_an_audit_row_and_a_live_event(
    api, manager, ana, definitions, channel, django_capture_on_commit_callbacks
):
    other_channel = factories.ChannelFactory()
    other_channel.teams.add(manager.teams.first())
    factories.ConversationFactory(channel=other_channel, contact=ana)
    ana.custom_attributes = {"company": "Old Co"}
    ana.save()
    with django_capture_on_commit_callbacks(execute=True):
        response = api.patch(
            f"/api/v1/contacts/{ana.pk}/",
            {
                "notes": "Prefers email",
                "custom_attributes": {
                    "points": " 1 250.5 ",
                    "birthday": "1990-04-01",
                    "tier": "gold",
                    "company": "",
                },
            },
            format="json",
        )
    assert response.status_code == 200, response.content
    ana.refresh_from_db()
    assert ana.custom_attributes == {
        "points": 1250.5,
        "birthday": "1990-04-01",
        "tier": "Gold",
    }
    assert ana.notes == "Prefers email"
    audit = Activity.objects.get()
    assert (audit.subject_type, audit.subject_id, audit.actor) == ("contact", ana.pk, manager)
    assert audit.before["custom_attributes"]["company"] == "Old Co"
    assert audit.after["custom_attributes"] == {
        "company": None,
        "points": 1250.5,
        "birthday": "1990-04-01",
        "tier": "Gold",
    }
    assert audit.after["notes"] == "Prefers email"
    updates = RealtimeEvent.objects.filter(type=events.CONTACT_UPDATED)
    assert sorted(e.channel_id for e in updates) == sorted([channel.pk, other_channel.pk])
    payload = updates.first().payload
    values = {a["key"]: a["value"] for a in payload["custom_attributes"]}
    assert values["tier"] == "Gold" and payload["notes"] == "Prefers email"
    # Saving the same again changes nothing: no audit row, no event.
    again = api.patch(f"/api/v1/contacts/{ana.pk}/", {"notes": "Prefers email"}, format="json")
    assert again.status_code == 200
    assert Activity.objects.count() == 1 and updates.count() == 2


def test_contact_labels_change_is_audited_and_live(api, ana, django_capture_on_commit_callbacks):
    label = Label.objects.create(name="wholesale")
    response = api.post(f"/api/v1/contacts/{ana.pk}/labels/", {"add": [label.pk]}, format="json")
    assert response.status_code == 200
    audit = Activity.objects.get(subject_type="contact")
    assert audit.after == {"labels": [{"id": label.pk, "name": "wholesale", "color": label.color}]}
    assert activity_text(activity_row(audit)) == f"{audit.actor_name} added label wholesale"
    event = RealtimeEvent.objects.get(type=events.CONTACT_UPDATED)
    assert [label["name"] for label in event.payload["labels"]] == ["wholesale"]
    # Adding it again: nothing new.
    api.post(f"/api/v1/contacts/{ana.pk}/labels/", {"add": [label.pk]}, format="json")
    assert Activity.objects.count() == 1


def test_the_thread_card_carries_the_custom_attributes_at_no_extra_query(
    api, channel, ana, definitions, count_queries
):
    conversation = ana.conversations.get()
    ana.custom_attributes = {"tier": "Bronze"}
    ana.save()
    with count_queries() as queries:
        body = api.get(f"/api/v1/conversations/{conversation.pk}/").json()
    assert queries.count == 4, queries.explain()
    values = {a["key"]: a["value"] for a in body["contact"]["custom_attributes"]}
    assert values == {"company": None, "points": None, "birthday": None, "tier": "Bronze"}


def activity_row(activity: Activity) -> dict:
    return {column: getattr(activity, column) for column in ACTIVITY_COLUMNS}
