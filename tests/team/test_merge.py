"""Merge and split (issue 14 item 6): services, undo, ingest after a merge, duplicates, API
with exact query counts, events, access, PostgreSQL concurrency."""

import threading
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone

from communications import events
from communications.models import (
    Activity,
    ContactIdentity,
    Conversation,
    ConversationLabel,
    Merge,
    Message,
    RealtimeEvent,
)
from communications.services.ingest import InboundMessage, InboundSender, ingest_messages
from communications.services.merge import (
    MergeConflict,
    MergeRejected,
    e164,
    merge_conversations,
    same_phone,
    split_conversation,
    unmerge_contact,
    unmerge_conversation,
)
from crm.models import Contact, ContactLabel, Label, Order
from tests import factories

from .conftest import api_for


def _thread(conversation, *texts, start=None, direction=Message.Direction.INBOUND):
    start = start or timezone.now() - timedelta(hours=1)
    return [
        factories.MessageFactory(
            conversation=conversation,
            content=text,
            direction=direction,
            created_at=start + timedelta(minutes=i),
        )
        for i, text in enumerate(texts)
    ]


@pytest.fixture
def pair(teams):
    """One customer writing twice on the shop channel: two conversations, one contact."""
    contact = factories.ContactFactory(name="Mia Wong", email="mia@example.com")
    older = factories.ConversationFactory(channel=teams["shop"], contact=contact)
    newer = factories.ConversationFactory(channel=teams["shop"], contact=contact)
    base = timezone.now() - timedelta(hours=2)
    _thread(older, "first", "second", start=base)
    _thread(newer, "third", "fourth", start=base + timedelta(minutes=30))
    Conversation.objects.filter(pk=newer.pk).update(unread_count=2)
    newer.refresh_from_db()
    return {**teams, "contact": contact, "older": older, "newer": newer}


def _contents(conversation):
    return list(
        Message.objects.filter(conversation=conversation)
        .order_by("created_at", "id")
        .values_list("content", flat=True)
    )


# --- services ----------------------------------------------------------------------------------


def test_merge_moves_every_message_label_and_mention_and_undo_restores_exactly(pair):
    older, newer, alice = pair["older"], pair["newer"], pair["alice"]
    vip, refund = Label.objects.create(name="vip"), Label.objects.create(name="refund")
    ConversationLabel.objects.create(conversation=older, label=vip)
    ConversationLabel.objects.create(conversation=newer, label=vip)
    ConversationLabel.objects.create(conversation=newer, label=refund)
    note = factories.MessageFactory(
        conversation=newer, kind=Message.Kind.NOTE, direction="out", content="VIP, be kind"
    )
    before_older = set(Message.objects.filter(conversation=older).values_list("id", flat=True))

    result = merge_conversations(older.pk, newer.pk, actor=alice)

    older.refresh_from_db()
    newer.refresh_from_db()
    assert _contents(older) == ["first", "second", "third", "fourth", "VIP, be kind"]
    assert Message.objects.filter(conversation=newer).count() == 0
    assert set(older.labels.values_list("name", flat=True)) == {"vip", "refund"}
    assert set(newer.labels.values_list("name", flat=True)) == {"vip", "refund"}  # kept
    assert newer.merged_into_id == older.pk and newer.is_archived
    assert older.unread_count == 2 and newer.unread_count == 0
    assert older.last_message_preview == "fourth"
    assert result.merge.undo_until > timezone.now() + timedelta(hours=23)
    assert Message.objects.get(pk=note.pk).conversation_id == older.pk

    unmerge_conversation(newer.pk, actor=alice)

    older.refresh_from_db()
    newer.refresh_from_db()
    assert set(Message.objects.filter(conversation=older).values_list("id", flat=True)) == (
        before_older
    )
    assert _contents(newer) == ["third", "fourth", "VIP, be kind"]
    assert list(older.labels.values_list("name", flat=True)) == ["vip"]
    assert newer.merged_into_id is None and not newer.is_archived
    assert newer.unread_count == 2 and older.unread_count == 0
    assert older.last_message_preview == "second" and newer.last_message_preview == "fourth"
    texts = [
        line.after.get("into") or line.before.get("into")
        for line in Activity.objects.filter(verb__in=["merged", "unmerged"])
    ]
    assert texts == [older.pk] * 4
    with pytest.raises(MergeConflict, match="not merged"):
        unmerge_conversation(newer.pk)


def test_merge_refuses_itself_another_contact_and_an_already_merged_one(pair):
    older, newer = pair["older"], pair["newer"]
    with pytest.raises(MergeRejected, match="into itself"):
        merge_conversations(older.pk, older.pk)
    stranger = factories.ConversationFactory(channel=pair["shop"])
    with pytest.raises(MergeRejected, match="different contacts.*merge_contacts"):
        merge_conversations(older.pk, stranger.pk)
    merge_conversations(older.pk, newer.pk)
    with pytest.raises(MergeConflict, match=f"{newer.pk} was already merged into"):
        merge_conversations(stranger.pk, newer.pk, merge_contacts=True)
    with pytest.raises(MergeConflict, match=f"{newer.pk} was already merged into"):
        merge_conversations(newer.pk, older.pk)
    assert Merge.objects.count() == 1
    assert Contact.objects.filter(merged_into__isnull=False).count() == 0  # rolled back


def test_undo_is_refused_after_the_window(pair, settings):
    older, newer = pair["older"], pair["newer"]
    result = merge_conversations(older.pk, newer.pk)
    Merge.objects.filter(pk=result.merge.pk).update(
        undo_until=timezone.now() - timedelta(seconds=1)
    )
    with pytest.raises(MergeConflict, match="can no longer be undone"):
        unmerge_conversation(newer.pk)
    assert Conversation.objects.get(pk=newer.pk).merged_into_id == older.pk


def test_the_customers_next_message_on_a_merged_chat_lands_in_the_survivor(pair):
    older, newer = pair["older"], pair["newer"]
    merge_conversations(older.pk, newer.pk)
    [result] = ingest_messages(
        pair["shop"],
        [InboundMessage(sender=InboundSender(external_id=newer.external_id), content="again")],
    )
    assert result.message.conversation_id == older.pk
    assert Conversation.objects.get(pk=older.pk).last_message_preview == "again"
    assert not Conversation.objects.filter(external_id=newer.external_id, is_archived=False)
    created = RealtimeEvent.objects.get(type=events.MESSAGE_CREATED)
    assert created.conversation_id == older.pk
    # and an undo gives that message back to the survivor only: it arrived there
    unmerge_conversation(newer.pk)
    assert Message.objects.get(pk=result.message.pk).conversation_id == older.pk


def test_merging_conversations_of_two_contacts_merges_the_contacts_across_channels(teams):
    """The same person on WhatsApp and email: two channels, two contacts."""
    whatsapp = teams["shop"]
    email = factories.ChannelFactory(kind="email", name="Mail")
    email.teams.add(teams["support"])
    on_whatsapp = factories.ContactFactory(name="Mia Wong", phone="+49 151 2345 6789", email="")
    on_email = factories.ContactFactory(name="", phone="", email="mia@example.com", notes="VIP")
    chat = factories.ConversationFactory(channel=whatsapp, contact=on_whatsapp)
    mail = factories.ConversationFactory(channel=email, contact=on_email)
    _thread(chat, "hi on whatsapp")
    [mail_message] = _thread(mail, "hi by mail", start=timezone.now() - timedelta(minutes=5))
    order = factories.OrderFactory(contact=on_email)
    vip = Label.objects.create(name="vip")
    ContactLabel.objects.create(contact=on_email, label=vip)

    result = merge_conversations(chat.pk, mail.pk, actor=teams["alice"], merge_contacts=True)

    on_whatsapp.refresh_from_db()
    assert result.contact_merge is not None
    assert on_whatsapp.email == "mia@example.com" and on_whatsapp.notes == "VIP"
    assert Contact.objects.get(pk=on_email.pk).merged_into_id == on_whatsapp.pk
    assert set(
        ContactIdentity.objects.filter(contact=on_whatsapp).values_list("channel_id", flat=True)
    ) == {
        whatsapp.pk,
        email.pk,
    }
    assert Order.objects.get(pk=order.pk).contact_id == on_whatsapp.pk
    assert Message.objects.get(pk=mail_message.pk).sender_contact_id is None or (
        Message.objects.get(pk=mail_message.pk).conversation_id == chat.pk
    )
    assert _contents(chat) == ["hi on whatsapp", "hi by mail"]
    assert list(on_whatsapp.labels.values_list("name", flat=True)) == ["vip"]
    # the contact merge is its own, undone on its own (after the conversation's)
    unmerge_conversation(mail.pk)
    unmerge_contact(on_email.pk)
    on_whatsapp.refresh_from_db()
    assert on_whatsapp.email == "" and on_whatsapp.notes == ""
    assert Conversation.objects.get(pk=mail.pk).contact_id == on_email.pk
    assert Order.objects.get(pk=order.pk).contact_id == on_email.pk
    assert ContactIdentity.objects.get(channel=email).contact_id == on_email.pk
    assert not on_whatsapp.labels.exists()


def test_a_chain_of_merges_is_undone_last_first(pair):
    older, newer = pair["older"], pair["newer"]
    third = factories.ConversationFactory(channel=pair["shop"], contact=pair["contact"])
    _thread(third, "fifth")
    merge_conversations(newer.pk, third.pk)
    merge_conversations(older.pk, newer.pk)
    assert Conversation.objects.get(pk=third.pk).merged_into_id == older.pk  # one hop
    with pytest.raises(MergeConflict, match="undo that merge first"):
        unmerge_conversation(third.pk)
    unmerge_conversation(newer.pk)
    assert Conversation.objects.get(pk=third.pk).merged_into_id == newer.pk
    unmerge_conversation(third.pk)
    assert _contents(third) == ["fifth"]
    assert _contents(newer) == ["third", "fourth"]
    assert _contents(pair["older"]) == ["first", "second"]


def test_split_moves_the_message_and_later_ones_into_a_new_conversation(pair):
    older, alice = pair["older"], pair["alice"]
    messages = _thread(older, "a", "b", "c", start=timezone.now() - timedelta(minutes=30))
    vip = Label.objects.create(name="vip")
    ConversationLabel.objects.create(conversation=older, label=vip)
    Conversation.objects.filter(pk=older.pk).update(unread_count=1)

    new = split_conversation(older.pk, messages[1].pk, actor=alice)

    older.refresh_from_db()
    assert _contents(new) == ["b", "c"]
    assert _contents(older) == ["first", "second", "a"]
    assert older.last_message_preview == "a" and new.last_message_preview == "c"
    assert new.unread_count == 1 and older.unread_count == 0
    assert new.contact_id == older.contact_id and new.channel_id == older.channel_id
    assert list(new.labels.values_list("name", flat=True)) == ["vip"]
    assert [line.verb for line in Activity.objects.filter(conversation=new)] == ["split"]
    with pytest.raises(MergeRejected, match="first"):
        split_conversation(
            older.pk, Message.objects.filter(conversation=older).earliest("created_at").pk
        )
    with pytest.raises(MergeRejected, match="not in conversation"):
        split_conversation(older.pk, messages[2].pk)


def test_phone_numbers_compare_in_e164():
    assert e164("+49 151 2345-6789") == "+4915123456789"
    assert e164("not a number") is None
    assert same_phone("+49 (151) 2345 6789", "+4915123456789")
    assert same_phone("+1 555 010 9999", "555-010-9999")  # written without the country code
    assert not same_phone("+1 555 010 9999", "+44 555 010 9999")


def test_duplicates_by_phone_and_email_only_among_visible_contacts(pair):
    mia = pair["contact"]
    Contact.objects.filter(pk=mia.pk).update(phone="+49 151 2345 6789")
    by_phone = factories.ContactFactory(phone="+4915123456789", email="")
    by_email = factories.ContactFactory(phone="", email="MIA@example.com")
    hidden = factories.ContactFactory(phone="+4915123456789")
    other = factories.ContactFactory(phone="+4915123456780")
    for contact in (by_phone, by_email, other):
        factories.ConversationFactory(channel=pair["shop"], contact=contact)
    factories.ConversationFactory(channel=pair["other"], contact=hidden)
    api = api_for(pair["alice"])
    response = api.get(f"/api/v1/contacts/{mia.pk}/duplicates/")
    assert response.status_code == 200
    assert [(r["contact"]["id"], r["reasons"]) for r in response.json()["results"]] == [
        (by_phone.pk, ["phone"]),
        (by_email.pk, ["email"]),
    ]
    assert api.get(f"/api/v1/contacts/{hidden.pk}/duplicates/").status_code == 404


# --- API ---------------------------------------------------------------------------------------


def test_merge_api_answers_with_both_rows_and_tells_every_viewer(
    pair, django_assert_num_queries, django_capture_on_commit_callbacks
):
    older, newer = pair["older"], pair["newer"]
    api = api_for(pair["alice"])
    url = f"/api/v1/conversations/{older.pk}/merge/"
    api.get("/api/v1/labels/")  # the token's user and the content types, warm
    with django_capture_on_commit_callbacks() as callbacks:
        with django_assert_num_queries(22):
            response = api.post(url, {"conversation_id": newer.pk}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["conversation"]["id"] == older.pk and body["merged"]["merged_into_id"] == older.pk
    assert body["merged"]["is_archived"] is True
    assert len(callbacks) == 1  # one broadcast: both rows and their lines
    stored = list(RealtimeEvent.objects.order_by("id"))
    assert [(e.type, e.conversation_id) for e in stored] == [
        (events.CONVERSATION_UPDATED, older.pk),
        (events.CONVERSATION_UPDATED, newer.pk),
        ("activity.created", older.pk),
        ("activity.created", newer.pk),
    ]
    assert stored[1].payload["merged_into_id"] == older.pk
    assert stored[1].payload["is_archived"] is True
    assert stored[1].counts == {"all": -1, "open": -1, "unread": -1, "unassigned": -1}
    assert stored[0].counts == {"unread": 1}  # the survivor now has the unread messages
    assert stored[2].payload["text"] == f"Alice Ng merged #{newer.pk} (HTTP API) into this"
    assert stored[3].payload["text"] == f"Alice Ng merged this into #{older.pk}"

    again = api.post(url, {"conversation_id": newer.pk}, format="json")
    assert again.status_code == 409 and "already merged" in again.json()["detail"]
    undo = api.post(f"/api/v1/conversations/{newer.pk}/unmerge/")
    assert undo.status_code == 200 and undo.json()["merged"]["merged_into_id"] is None
    assert api.post(f"/api/v1/conversations/{newer.pk}/unmerge/").status_code == 409


def test_merge_api_validates_and_hides_what_the_manager_cannot_see(pair):
    older, foreign = pair["older"], pair["foreign"]
    api = api_for(pair["alice"])
    url = f"/api/v1/conversations/{older.pk}/merge/"
    assert api.post(url, {}, format="json").status_code == 400
    assert api.post(url, {"conversation_id": "x"}, format="json").status_code == 400
    itself = api.post(url, {"conversation_id": older.pk}, format="json")
    assert itself.status_code == 400 and "itself" in itself.json()["conversation_id"][0]
    hidden = api.post(url, {"conversation_id": foreign.pk}, format="json")
    assert hidden.status_code == 404 and str(foreign.pk) in hidden.json()["detail"]
    stranger = factories.ConversationFactory(channel=pair["shop"])
    other_contact = api.post(url, {"conversation_id": stranger.pk}, format="json")
    assert other_contact.status_code == 400 and "merge_contacts" in str(other_contact.json())
    bob = api_for(pair["bob"])
    assert bob.post(url, {"conversation_id": pair["newer"].pk}, format="json").status_code == 404
    assert Merge.objects.count() == 0


def test_split_api(pair, django_assert_num_queries):
    older = pair["older"]
    second = Message.objects.get(conversation=older, content="second")
    api = api_for(pair["alice"])
    url = f"/api/v1/conversations/{older.pk}/split/"
    api.get("/api/v1/labels/")
    with django_assert_num_queries(24):
        response = api.post(url, {"message_id": second.pk}, format="json")
    assert response.status_code == 201, response.json()
    split = response.json()["split"]
    assert split["last_message_preview"] == "second"
    assert response.json()["conversation"]["last_message_preview"] == "first"
    types = list(RealtimeEvent.objects.order_by("id").values_list("type", "conversation_id"))
    assert types == [
        (events.CONVERSATION_UPDATED, older.pk),
        (events.CONVERSATION_CREATED, split["id"]),
        ("activity.created", older.pk),
        ("activity.created", split["id"]),
    ]
    bad = api.post(url, {"message_id": 999999}, format="json")
    assert bad.status_code == 400 and "not in conversation" in bad.json()["message_id"][0]
    assert (
        api_for(pair["bob"]).post(url, {"message_id": second.pk}, format="json").status_code == 404
    )


def test_merge_candidates_list_the_contacts_and_duplicates_conversations(
    pair, django_assert_num_queries
):
    older, newer = pair["older"], pair["newer"]
    twin = factories.ContactFactory(name="Mia W.", email="mia@example.com", phone="")
    twin_chat = factories.ConversationFactory(channel=pair["shop"], contact=twin)
    api = api_for(pair["alice"])
    api.get("/api/v1/labels/")
    with django_assert_num_queries(4):
        response = api.get(f"/api/v1/conversations/{older.pk}/merge-candidates/")
    rows = response.json()["results"]
    assert {(r["conversation"]["id"], r["same_contact"]) for r in rows} == {
        (newer.pk, True),
        (twin_chat.pk, False),
    }
    merged = api.post(
        f"/api/v1/conversations/{older.pk}/merge/",
        {"conversation_id": twin_chat.pk, "merge_contacts": True},
        format="json",
    )
    assert merged.status_code == 200
    assert Contact.objects.get(pk=twin.pk).merged_into_id == pair["contact"].pk


def test_contact_merge_api_and_undo(pair):
    mia = pair["contact"]
    twin = factories.ContactFactory(name="", email="", phone="+4915199999999")
    chat = factories.ConversationFactory(channel=pair["shop"], contact=twin)
    api = api_for(pair["alice"])
    response = api.post(f"/api/v1/contacts/{mia.pk}/merge/", {"contact_id": twin.pk}, format="json")
    assert response.status_code == 200
    assert Conversation.objects.get(pk=chat.pk).contact_id == mia.pk
    types = set(RealtimeEvent.objects.values_list("type", flat=True))
    assert {events.CONVERSATION_UPDATED, events.CONTACT_UPDATED, "activity.created"} <= types
    audit = Activity.objects.get(subject_type="contact", verb="merged")
    assert audit.conversation_id is None and audit.subject_id == mia.pk
    again = api.post(f"/api/v1/contacts/{mia.pk}/merge/", {"contact_id": twin.pk}, format="json")
    assert again.status_code == 404  # a merged-away contact is no longer offered
    undo = api.post(f"/api/v1/contacts/{twin.pk}/unmerge/")
    assert undo.status_code == 200
    assert Conversation.objects.get(pk=chat.pk).contact_id == twin.pk
    assert api.post(f"/api/v1/contacts/{twin.pk}/unmerge/").status_code == 409
    hidden = factories.ConversationFactory(channel=pair["other"])
    assert (
        api.post(
            f"/api/v1/contacts/{mia.pk}/merge/", {"contact_id": hidden.contact_id}, format="json"
        ).status_code
        == 404
    )


# --- concurrency on PostgreSQL ------------------------------------------------------------------


def _race(functions):
    start = threading.Barrier(len(functions))
    outcomes, errors = [], []

    def run(function):
        try:
            start.wait()
            outcomes.append(function())
        except (MergeConflict, MergeRejected) as exc:
            outcomes.append(exc)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(f,)) for f in functions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    return outcomes


def _deadlocks_so_far() -> int:
    """PostgreSQL's count of deadlocks in this database (a backend reports its own when it
    ends: _race closes its threads' connections)."""
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush(), pg_stat_clear_snapshot()")
        cursor.execute("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
        return cursor.fetchone()[0]


def _two_conversations():
    channel = factories.ChannelFactory()
    contact = factories.ContactFactory()
    a = factories.ConversationFactory(channel=channel, contact=contact)
    b = factories.ConversationFactory(channel=channel, contact=contact)
    _thread(a, "a1", "a2")
    _thread(b, "b1", "b2", start=timezone.now() - timedelta(minutes=30))
    return a, b


@pytest.mark.django_db(transaction=True)
def test_concurrent_merges_of_one_pair_merge_once():
    a, b = _two_conversations()
    outcomes = _race([lambda: merge_conversations(a.pk, b.pk) for _ in range(8)])
    assert sum(not isinstance(o, Exception) for o in outcomes) == 1
    assert all(isinstance(o, MergeConflict) for o in outcomes if isinstance(o, Exception))
    assert Merge.objects.count() == 1
    assert sorted(_contents(a)) == ["a1", "a2", "b1", "b2"]
    assert Activity.objects.filter(conversation=a, verb="merged").count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_into_b_while_b_into_a_loses_and_doubles_nothing():
    a, b = _two_conversations()
    outcomes = _race(
        [lambda: merge_conversations(a.pk, b.pk), lambda: merge_conversations(b.pk, a.pk)] * 4
    )
    assert sum(not isinstance(o, Exception) for o in outcomes) == 1
    assert Merge.objects.count() == 1
    merge = Merge.objects.get()
    survivor = merge.target_conversation
    assert sorted(_contents(survivor)) == ["a1", "a2", "b1", "b2"]
    assert Message.objects.count() == 4
    assert Conversation.objects.filter(merged_into__isnull=False).count() == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("round_", range(8))  # a deadlock is a race: give it chances to show
def test_an_undo_racing_the_customers_messages_loses_none(round_):
    a, b = _two_conversations()
    merge_conversations(a.pk, b.pk)
    channel = b.channel

    def write(n):
        return lambda: ingest_messages(
            channel,
            [InboundMessage(sender=InboundSender(external_id=b.external_id), content=f"m{n}")],
        )

    deadlocks = _deadlocks_so_far()
    _race([lambda: unmerge_conversation(b.pk)] + [write(n) for n in range(6)])
    assert Message.objects.count() == 10
    # Retries would hide a deadlock: ingest and undo take the rows in one order, so none.
    assert _deadlocks_so_far() == deadlocks
    assert Conversation.objects.get(pk=b.pk).merged_into_id is None
    assert sorted(_contents(b))[:2] == ["b1", "b2"]


# --- admin and demo ----------------------------------------------------------------------------


def test_the_admin_merges_two_selected_conversations_and_shows_what_they_went_into(pair, client):
    admin_user = factories.UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(admin_user)
    older, newer = pair["older"], pair["newer"]
    url = "/admin/communications/conversation/"
    one = client.post(url, {"action": "merge_two", "_selected_action": [older.pk]}, follow=True)
    assert "Select exactly two" in one.content.decode()
    done = client.post(
        url, {"action": "merge_two", "_selected_action": [older.pk, newer.pk]}, follow=True
    )
    assert f"Conversation #{newer.pk} merged into #{older.pk}" in done.content.decode()
    page = client.get(f"{url}{newer.pk}/change/").content.decode()
    assert f"conversation #{older.pk}</a>" in page
    assert f"merged into #{older.pk}" in client.get(url + "?is_archived__exact=1").content.decode()
    twin = factories.ContactFactory()
    contacts = client.post(
        "/admin/crm/contact/",
        {"action": "merge_two", "_selected_action": [pair["contact"].pk, twin.pk]},
        follow=True,
    )
    assert f"Contact #{twin.pk} merged into #{pair['contact'].pk}" in contacts.content.decode()
    assert (
        f"contact #{pair['contact'].pk}</a>"
        in client.get(f"/admin/crm/contact/{twin.pk}/change/").content.decode()
    )


def test_the_demo_has_a_merged_pair_and_a_duplicate_to_merge(client, django_user_model):
    from django.core.management import call_command

    call_command("seed_demo")
    merge = Merge.objects.get(kind=Merge.Kind.CONVERSATIONS)
    survivor = merge.target_conversation
    assert survivor.channel.kind == "whatsapp" and merge.source_conversation.channel.kind == "email"
    assert survivor.contact.email == "lena.fischer@example.com"
    # the email's messages moved into the WhatsApp chat (the report history adds older ones)
    moved = merge.moved["messages"]
    assert moved and set(moved) <= set(survivor.messages.values_list("pk", flat=True))
    manager = django_user_model.objects.get(username="manager")
    tom = Contact.objects.get(name="Tom Becker")
    api = api_for(manager)
    duplicates = api.get(f"/api/v1/contacts/{tom.pk}/duplicates/").json()["results"]
    assert [(d["contact"]["name"], d["reasons"]) for d in duplicates] == [("Tom B.", ["phone"])]
    lines = api.get(f"/api/v1/conversations/{survivor.pk}/activity/").json()["results"]
    assert any("merged" in line["text"] and "into this" in line["text"] for line in lines)
