"""The audit log (communications.Activity rows without a conversation, plus the auto-assignment
lines): each audited change writes exactly one row with its before/after in the change's
transaction, a rolled-back change writes none, a secret's value is never in any row, and the
admin list is read-only with working filters."""

import json

import pytest
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType

from communications import admin as communications_admin
from communications.models import Activity, Channel
from communications.services.ingest import InboundMessage, InboundSender, ingest_messages
from crm.models import Contact, Team
from tests import factories


@pytest.fixture
def boss(client, db):
    boss = factories.UserFactory(
        username="boss", first_name="Dana", last_name="", is_staff=True, is_superuser=True
    )
    client.force_login(boss)
    Activity.objects.all().delete()  # force_login is a sign-in: start from an empty log
    return boss


def audit_rows(**filters) -> list[Activity]:
    return list(Activity.objects.filter(conversation__isnull=True, **filters).order_by("id"))


def whole_table() -> str:
    return json.dumps(list(Activity.objects.values()), default=str)


def contact_form(contact: Contact, **changes) -> dict:
    data = {
        "name": contact.name,
        "phone": contact.phone,
        "email": contact.email,
        "avatar_url": contact.avatar_url,
        "username": contact.username,
        "notes": contact.notes,
        "label_links-TOTAL_FORMS": 0,
        "label_links-INITIAL_FORMS": 0,
        "orders-TOTAL_FORMS": 0,
        "orders-INITIAL_FORMS": 0,
    }
    return {**data, **changes}


def test_a_contact_edit_is_one_row_with_the_edited_fields_before_and_after(
    client, boss, count_queries
):
    contact = factories.ContactFactory(name="Ann Lee", email="ann@example.com")
    url = f"/admin/crm/contact/{contact.pk}/change/"
    form = contact_form(contact, name="Ann Leigh", notes="prefers email")
    ContentType.objects.get_for_model(Contact)  # cached per process: not counted either way
    with count_queries() as queries:
        assert client.post(url, form).status_code == 302
    # session, user; savepoint, contact, UPDATE, the audit INSERT, Django's admin LogEntry
    # INSERT, release.
    assert queries.count == 8, queries.explain()
    [row] = audit_rows()
    assert (row.verb, row.subject_type, row.subject_id) == ("changed", "contact", contact.pk)
    assert row.subject_repr == "Ann Leigh" and row.actor == boss and row.actor_name == "Dana"
    assert row.before == {"name": "Ann Lee", "notes": ""}
    assert row.after == {"name": "Ann Leigh", "notes": "prefers email"}

    assert client.post(url, contact_form(Contact.objects.get(pk=contact.pk))).status_code == 302
    assert len(audit_rows()) == 1  # saved without a change: no row


def test_a_rolled_back_contact_edit_writes_no_row(client, boss, monkeypatch):
    contact = factories.ContactFactory(name="Ann Lee")
    real = communications_admin.record_audit

    def record_then_fail(*args, **kwargs):
        real(*args, **kwargs)
        assert Activity.objects.count() == 1  # written, inside the save's transaction
        raise RuntimeError("the save fails after the audit row")

    monkeypatch.setattr(communications_admin, "record_audit", record_then_fail)
    with pytest.raises(RuntimeError):
        client.post(f"/admin/crm/contact/{contact.pk}/change/", contact_form(contact, name="X"))
    assert Contact.objects.get(pk=contact.pk).name == "Ann Lee"
    assert not Activity.objects.exists()


def test_channel_settings_and_secrets_record_which_keys_never_the_values(client, boss):
    channel = factories.ChannelFactory(
        kind="whatsapp", name="WA", secrets={"access_token": "tok-OLD-VERY-SECRET"}
    )
    url = f"/admin/communications/channel/{channel.pk}/change/"
    form = {
        "name": "WhatsApp shop",
        "is_active": "on",
        "phone_number_id": "1234",
        "auto_assignment": "off",
        "hours_time_zone": "UTC",  # as the page posts it
        "access_token": "tok-NEW-VERY-SECRET",
        "app_secret": "app-VERY-SECRET",
    }
    response = client.post(url, form)
    assert response.status_code == 302, response.context["adminform"].form.errors
    channel.refresh_from_db()
    assert channel.secrets["access_token"] == "tok-NEW-VERY-SECRET"  # the change was made
    [row] = audit_rows()
    assert (row.verb, row.subject_type, row.subject_id) == ("changed", "channel", channel.pk)
    assert row.before == {"name": "WA", "phone_number_id": ""}
    assert row.after == {
        "name": "WhatsApp shop",
        "phone_number_id": "1234",
        "secrets_changed": ["access_token", "app_secret"],
    }
    dump = whole_table()
    for value in ("tok-NEW-VERY-SECRET", "app-VERY-SECRET", "tok-OLD-VERY-SECRET", "VERY-SECRET"):
        assert value not in dump
    page = client.get("/admin/communications/activity/").content.decode()
    said = "name, phone_number_id, secret access_token, secret app_secret"
    assert f"Dana changed channel WhatsApp shop (WhatsApp): {said}" in page
    assert "VERY-SECRET" not in page


def test_a_channel_added_in_the_admin_is_one_created_row(client, boss):
    response = client.post(
        "/admin/communications/channel/add/",
        {"kind": Channel.Kind.API, "name": "New shop", "is_active": "on", "inbound_token": "t-1"},
    )
    assert response.status_code == 302
    channel = Channel.objects.get(name="New shop")
    [row] = audit_rows()
    assert (row.verb, row.subject_type, row.subject_id) == ("created", "channel", channel.pk)
    assert row.before == {}
    assert row.after["name"] == "New shop" and row.after["secrets_changed"] == ["inbound_token"]
    assert "t-1" not in json.dumps(row.after)


def test_users_and_teams_created_and_changed_in_the_admin(client, boss, count_queries):
    response = client.post(
        "/admin/auth/user/add/",
        {
            "username": "sam",
            "usable_password": "true",
            "password1": "Pw-VERY-SECRET-123",
            "password2": "Pw-VERY-SECRET-123",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    sam = get_user_model().objects.get(username="sam")
    [created] = audit_rows()
    assert (created.verb, created.subject_type, created.subject_id) == ("created", "user", sam.pk)
    assert created.after == {"username": "sam"}

    team = factories.TeamFactory(name="Support")
    url = f"/admin/crm/team/{team.pk}/change/"
    ContentType.objects.get_for_model(Team)  # cached per process: not counted either way
    with count_queries() as queries:
        response = client.post(url, {"name": "Support EU", "members": [sam.pk]})
    assert response.status_code == 302
    # session, user; savepoint, team, its members, the chosen users, name unique, UPDATE,
    # members' links (read, add), the audit INSERT, LogEntry INSERT, release.
    assert queries.count == 13, queries.explain()
    changed = audit_rows()[-1]
    assert (changed.verb, changed.subject_type, changed.subject_id) == ("changed", "team", team.pk)
    assert changed.before == {"name": "Support", "members": []}
    assert changed.after == {"name": "Support EU", "members": [{"id": sam.pk, "name": "sam"}]}
    assert len(audit_rows()) == 2
    assert "VERY-SECRET" not in whole_table()
    assert Team.objects.get(pk=team.pk).name == "Support EU"


def test_sign_in_and_failed_sign_in_are_recorded_without_the_password(client, db, count_queries):
    factories.UserFactory(username="ann", password="right-VERY-SECRET")
    with count_queries() as queries:
        response = client.post(
            "/accounts/login/", {"username": "ann", "password": "wrong-VERY-SECRET"}
        )
    # the user looked up, the audit INSERT (the brake's counters are in Redis)
    assert queries.count == 2, queries.explain()
    assert response.status_code == 200  # the form again, with its error
    [failed] = audit_rows()
    assert (failed.verb, failed.subject_type, failed.actor) == ("login_failed", "user", None)
    assert failed.after == {"username": "ann", "address": "127.0.0.1"}
    response = client.post("/accounts/login/", {"username": "ann", "password": "right-VERY-SECRET"})
    assert response.status_code == 302
    signed_in = audit_rows()[-1]
    assert signed_in.verb == "login" and signed_in.actor.username == "ann"
    assert signed_in.after == {"address": "127.0.0.1"}
    assert len(audit_rows()) == 2
    assert "VERY-SECRET" not in whole_table()


def auto_assigning_channel():
    channel = factories.ChannelFactory(auto_assignment=Channel.AutoAssignment.ROUND_ROBIN)
    team = factories.TeamFactory(name="Support")
    channel.teams.add(team)
    channel.assignment_team = team
    channel.save()
    sam = factories.UserFactory(username="sam", first_name="Sam", last_name="")
    team.members.add(sam)
    from communications.services.assignment import set_availability

    set_availability(sam, status="online")
    return channel


def test_an_ingest_that_fails_after_assigning_leaves_no_line(db, monkeypatch):
    from communications.services import ingest

    channel = auto_assigning_channel()

    def fail(*args, **kwargs):
        assert Activity.objects.filter(verb="assigned").count() == 1  # written, then undone
        raise RuntimeError("the batch fails after the assignment")

    monkeypatch.setattr(ingest.events, "record_events", fail)
    item = InboundMessage(external_id="m1", sender=InboundSender(external_id="c1"), content="hi")
    with pytest.raises(RuntimeError):
        ingest_messages(channel, [item])
    assert not Activity.objects.exists()
    assert not channel.conversations.exists()


def test_auto_assignment_choice_is_one_line_of_the_new_conversation(db):
    channel = factories.ChannelFactory(auto_assignment=Channel.AutoAssignment.ROUND_ROBIN)
    team = factories.TeamFactory(name="Support")
    channel.teams.add(team)
    channel.assignment_team = team
    channel.save()
    sam = factories.UserFactory(username="sam", first_name="Sam", last_name="")
    team.members.add(sam)
    from communications.services.assignment import set_availability

    set_availability(sam, status="online")
    [result] = ingest_messages(
        channel,
        [
            InboundMessage(
                external_id="m1", sender=InboundSender(external_id="c1", name="Cy"), content="hi"
            )
        ],
    )
    conversation = result.message.conversation
    [line] = Activity.objects.filter(conversation=conversation)
    assert line.verb == "assigned" and line.actor is None
    assert line.before == {"assignee": None, "team": None}
    assert line.after == {
        "assignee": {"id": sam.pk, "name": "Sam"},
        "team": {"id": team.pk, "name": "Support"},
        "rule": "round_robin",
    }
    assert line.subject_type == "conversation" and line.subject_id == conversation.pk


def test_the_admin_list_is_read_only_and_filters_work(client, boss):
    contact = factories.ContactFactory(name="Ann Lee")
    client.post(f"/admin/crm/contact/{contact.pk}/change/", contact_form(contact, name="Ann L"))
    client.post("/accounts/login/", {"username": "ghost", "password": "nope"})
    url = "/admin/communications/activity/"
    page = client.get(url).content.decode()
    assert "Dana changed contact Ann L: name" in page
    assert "Failed sign-in as ghost from 127.0.0.1" in page
    for verb, seen, hidden in (
        ("?verb=login_failed", "Failed sign-in as ghost", "Dana changed contact"),
        ("?subject_type=contact", "Dana changed contact", "Failed sign-in"),
        (f"?actor__id__exact={boss.pk}", "Dana changed contact", "Failed sign-in"),
        ("?q=ghost", "Failed sign-in as ghost", "Dana changed contact"),
        ("?created_at__gte=2000-01-01", "Dana changed contact", "nothing-hidden"),
    ):
        page = client.get(url + verb)
        assert page.status_code == 200, verb
        text = page.content.decode()
        assert seen in text and hidden not in text, verb
    row = Activity.objects.filter(verb="changed").get()
    assert b"Add activity" not in client.get(url).content
    assert client.get(url + "add/").status_code == 403
    assert client.get(f"{url}{row.pk}/change/").status_code == 200  # the view page
    assert client.post(f"{url}{row.pk}/change/", {"verb": "login"}).status_code == 403
    assert client.post(f"{url}{row.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Activity.objects.filter(pk=row.pk, verb="changed").exists()


def test_the_demo_data_has_audit_rows_and_no_secret(db):
    from django.core.management import call_command

    call_command("seed_demo", stdout=open("/dev/null", "w"))
    kinds = set(Activity.objects.values_list("verb", "subject_type"))
    assert {("created", "channel"), ("changed", "team"), ("login_failed", "user")} <= kinds
    assert ("assigned", "conversation") in kinds
    dump = whole_table()
    for channel in Channel.objects.all():
        for value in channel.secrets.values():
            assert value not in dump


def test_a_password_change_in_the_admin_is_the_fact_only(client, boss):
    sam = factories.UserFactory(username="sam")
    url = f"/admin/auth/user/{sam.pk}/password/"
    new = "New-VERY-SECRET-456"
    response = client.post(url, {"password1": new, "password2": new, "usable_password": "true"})
    assert response.status_code == 302
    [row] = audit_rows()
    assert (row.verb, row.subject_type, row.subject_id) == ("changed", "user", sam.pk)
    assert (row.before, row.after, row.actor) == ({}, {"password": "changed"}, boss)
    sam.refresh_from_db()
    assert sam.check_password(new)
    dump = whole_table()
    assert "VERY-SECRET" not in dump and sam.password not in dump


def test_the_admin_list_costs_a_fixed_number_of_queries(client, boss, count_queries):
    for n in range(3):
        contact = factories.ContactFactory(name=f"C{n}")
        client.post(f"/admin/crm/contact/{contact.pk}/change/", contact_form(contact, notes="x"))
    with count_queries() as first:
        assert client.get("/admin/communications/activity/").status_code == 200
    for n in range(3, 8):
        contact = factories.ContactFactory(name=f"C{n}")
        client.post(f"/admin/crm/contact/{contact.pk}/change/", contact_form(contact, notes="x"))
    with count_queries() as more:
        assert client.get("/admin/communications/activity/").status_code == 200
    # session, user, the actor filter's users, the row estimate, the count, the admin menu's
    # Matrix settings, one page of rows (names stored on them: no join, no query per row).
    assert (first.count, more.count) == (7, 7), more.explain()
