"""The contacts pages: search, access, typed attribute edits with their messages, labels, the
contact note — the same service (audit row, contact.updated) as the API."""

import pytest

from communications import events
from communications.models import Activity, RealtimeEvent
from crm.models import ContactLabel, CustomAttributeDefinition, Label
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(client, manager):
    client.force_login(manager)
    return client


@pytest.fixture
def ana(channel):
    return factories.ConversationFactory(
        channel=channel, contact__name="Ana Lima", contact__phone="+1 555-123-4567"
    ).contact


@pytest.fixture
def definitions(db):
    CustomAttributeDefinition.objects.create(key="points", name="Loyalty points", type="number")
    CustomAttributeDefinition.objects.create(
        key="tier", name="Tier", type="list", options=["Bronze", "Gold"], position=1
    )
    CustomAttributeDefinition.objects.create(
        key="birthday", name="Birthday", type="date", position=2
    )


def test_the_list_searches_phone_in_any_formatting_and_hides_foreign_contacts(signed_in, ana):
    factories.ConversationFactory(contact__name="Ana Foreign", contact__phone="+1 555 123 4567")
    page = signed_in.get("/contacts/", {"q": "15551234567"})
    assert page.status_code == 200
    body = page.content.decode()
    assert "Ana Lima" in body and "Ana Foreign" not in body
    assert f'href="/contacts/{ana.pk}/"' in body
    assert 'href="/contacts/" aria-current="page"' in body  # the top bar's link
    assert "No contact matches" in signed_in.get("/contacts/", {"q": "nobody"}).content.decode()
    too_long = signed_in.get("/contacts/", {"q": "x" * 201})
    assert too_long.status_code == 400 and "at most 200" in too_long.content.decode()


def test_the_inbox_top_bar_links_to_contacts(signed_in):
    assert 'href="/contacts/"' in signed_in.get("/inbox/").content.decode()


def test_the_detail_lists_conversations_and_a_foreign_contact_is_404(signed_in, ana):
    conversation = ana.conversations.get()
    body = signed_in.get(f"/contacts/{ana.pk}/").content.decode()
    assert f'href="/inbox/#c{conversation.pk}"' in body
    foreign = factories.ConversationFactory().contact
    assert signed_in.get(f"/contacts/{foreign.pk}/").status_code == 404
    post = signed_in.post(f"/contacts/{foreign.pk}/", {"action": "details", "name": "x"})
    assert post.status_code == 404


def test_a_number_attribute_refuses_text_with_a_clear_message(signed_in, ana, definitions):
    response = signed_in.post(
        f"/contacts/{ana.pk}/",
        {"action": "attributes", "attr-points": "abc", "attr-tier": "Gold", "attr-birthday": ""},
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert "Loyalty points must be a number (like 42 or 3.5), not &#x27;abc&#x27;" in body
    assert 'aria-invalid="true" aria-describedby="attr-points-error"' in body
    assert 'value="abc"' in body  # what was typed is kept to correct it
    ana.refresh_from_db()
    assert ana.custom_attributes == {}
    assert not Activity.objects.filter(subject_type="contact").exists()


def test_saving_attributes_labels_and_the_note(
    signed_in, ana, definitions, manager, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = signed_in.post(
            f"/contacts/{ana.pk}/",
            {
                "action": "attributes",
                "attr-points": "42",
                "attr-tier": "Gold",
                "attr-birthday": "1990-04-01",
            },
            follow=True,
        )
    assert "Custom attributes saved." in response.content.decode()
    ana.refresh_from_db()
    assert ana.custom_attributes == {"points": 42, "tier": "Gold", "birthday": "1990-04-01"}
    assert Activity.objects.get(subject_type="contact").actor == manager
    assert RealtimeEvent.objects.filter(type=events.CONTACT_UPDATED).count() == 1

    signed_in.post(f"/contacts/{ana.pk}/", {"action": "label-add", "label_name": "VIP"})
    label = Label.objects.get(name="VIP")
    assert ContactLabel.objects.filter(contact=ana, label=label).exists()
    signed_in.post(f"/contacts/{ana.pk}/", {"action": "label-remove", "label": label.pk})
    assert not ContactLabel.objects.filter(contact=ana).exists()
    assert Activity.objects.filter(verb="labels", subject_id=ana.pk).count() == 2

    response = signed_in.post(
        f"/contacts/{ana.pk}/",
        {
            "action": "details",
            "name": "Ana Lima",
            "phone": "+1 555-123-4567",
            "email": "bad",
            "notes": "x",
        },
    )
    assert response.status_code == 400 and "is not an email address" in response.content.decode()
    signed_in.post(
        f"/contacts/{ana.pk}/",
        {
            "action": "details",
            "name": "Ana L.",
            "phone": "+1 555-123-4567",
            "email": "",
            "notes": "Prefers email",
        },
    )
    ana.refresh_from_db()
    assert (ana.name, ana.notes) == ("Ana L.", "Prefers email")


def test_an_unknown_action_is_a_400(signed_in, ana):
    assert signed_in.post(f"/contacts/{ana.pk}/", {"action": "drop"}).status_code == 400
