"""Staff triage in the Django admin."""

import pytest

from communications.models import Channel, Conversation, Message
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    admin = factories.UserFactory(username="boss", is_staff=True, is_superuser=True)
    client.force_login(admin)
    client.user = admin
    return client


def test_conversation_list_joins_related_rows_in_one_query(staff_client, count_queries):
    for _ in range(20):
        factories.ConversationFactory(assignee=factories.UserFactory())
    with count_queries() as few:
        assert staff_client.get("/admin/communications/conversation/").status_code == 200
    for _ in range(20):
        factories.ConversationFactory(assignee=factories.UserFactory())
    with count_queries() as more:
        staff_client.get("/admin/communications/conversation/")
    assert more.count == few.count, more.explain()


def test_bulk_assign_resolve_archive(staff_client, django_capture_on_commit_callbacks):
    conversations = factories.ConversationFactory.create_batch(3)
    ids = [c.pk for c in conversations]
    url = "/admin/communications/conversation/"
    with django_capture_on_commit_callbacks() as callbacks:
        staff_client.post(url, {"action": "assign_to_me", "_selected_action": ids})
    # one broadcast per conversation after commit: conversation.updated + its activity line
    assert len(callbacks) == 3
    staff_client.post(url, {"action": "resolve", "_selected_action": ids[:2]})
    staff_client.post(url, {"action": "archive", "_selected_action": ids[2:]})
    rows = {c.pk: c for c in Conversation.objects.all()}
    assert all(rows[i].assignee_id == staff_client.user.pk for i in ids)
    assert [rows[i].status for i in ids] == ["resolved", "resolved", "open"]
    assert [rows[i].is_archived for i in ids] == [False, False, True]


def test_failed_filter_and_retry_action(staff_client, django_capture_on_commit_callbacks):
    conversation = factories.ConversationFactory()
    failed = factories.MessageFactory(
        conversation=conversation, direction="out", status="failed", failure_reason="HTTP 500"
    )
    fine = factories.MessageFactory(conversation=conversation)
    page = staff_client.get("/admin/communications/message/?delivery=failed")
    assert b"HTTP 500" in page.content
    assert list(page.context["cl"].result_list) == [failed]
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            "/admin/communications/message/",
            {"action": "retry_sending", "_selected_action": [failed.pk, fine.pk]},
            follow=True,
        )
    assert b"1 message(s) queued again" in response.content
    assert b"were not failed or unknown outbound messages" in response.content
    failed.refresh_from_db()
    fine.refresh_from_db()
    assert failed.status == Message.Status.SENT
    assert fine.status == Message.Status.RECEIVED


def test_channel_secrets_are_never_shown_and_blank_keeps_them(staff_client):
    channel = factories.ChannelFactory(
        kind="whatsapp", secrets={"access_token": "tok-VERY-SECRET"}, config={"keep": "me"}
    )
    url = f"/admin/communications/channel/{channel.pk}/change/"
    page = staff_client.get(url)
    assert page.status_code == 200
    assert b"tok-VERY-SECRET" not in page.content
    for key in ("access_token", "app_secret", "verify_token"):
        assert f'name="{key}"'.encode() in page.content
    assert b"(set: leave blank to keep it)" in page.content
    response = staff_client.post(
        url, {"name": "Renamed", "is_active": "on", "access_token": "", "app_secret": "s2"}
    )
    assert response.status_code == 302
    channel.refresh_from_db()
    assert channel.name == "Renamed"
    assert channel.secrets == {"access_token": "tok-VERY-SECRET", "app_secret": "s2"}
    assert channel.config == {"keep": "me"}


def test_secrets_are_encrypted_at_rest():
    from django.db import connection

    channel = factories.ChannelFactory(secrets={"inbound_token": "plain-text-token"})
    with connection.cursor() as cursor:
        cursor.execute("SELECT secrets FROM communications_channel WHERE id = %s", [channel.pk])
        stored = cursor.fetchone()[0]
    assert "plain-text-token" not in stored
    assert Channel.objects.get(pk=channel.pk).secrets == {"inbound_token": "plain-text-token"}


def test_contact_admin_shows_orders_inline(staff_client):
    order = factories.OrderFactory(number="SB-777")
    page = staff_client.get(f"/admin/crm/contact/{order.contact_id}/change/")
    assert b"SB-777" in page.content


def test_access_changes_in_the_admin_tell_open_inboxes_after_commit(
    staff_client, monkeypatch, django_capture_on_commit_callbacks
):
    """Users, teams and channels decide who sees what: each save or delete tells the sockets."""
    from communications import events

    told = []
    monkeypatch.setattr(events, "_send_to_groups", lambda by_group: told.append(by_group))
    user = factories.UserFactory(username="dana")
    team = factories.TeamFactory()
    form = {
        "username": "dana",
        "is_active": "on",
        "is_superuser": "on",
        "date_joined_0": "2026-01-01",
        "date_joined_1": "09:00:00",
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(f"/admin/auth/user/{user.pk}/change/", form)
        assert response.status_code == 302, response.content[:2000]
        staff_client.post(f"/admin/crm/team/{team.pk}/delete/", {"post": "yes"})
    user.refresh_from_db()
    assert user.is_superuser
    assert told == [{events.ACCESS_GROUP: [{"id": None, "type": events.ACCESS_CHANGED}]}] * 2


def test_early_statuses_are_listed_read_only_for_ops(staff_client):
    from communications.models import EarlyStatus

    channel = factories.ChannelFactory()
    EarlyStatus.objects.create(channel=channel, external_id="wamid.WAITING", status="delivered")
    EarlyStatus.objects.create(channel=channel, external_id="wamid.OTHER", status="read")
    page = staff_client.get("/admin/communications/earlystatus/?q=wamid.WAITING")
    assert page.status_code == 200
    assert b"wamid.WAITING" in page.content
    assert b"wamid.OTHER" not in page.content  # searched by the provider id
    assert staff_client.get("/admin/communications/earlystatus/add/").status_code == 403
