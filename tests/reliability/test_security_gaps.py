"""Security gaps of issue 9, item 7: assignment scope, superuser-only backfill, redaction
wipes history, production keys, secrets at rest under HKDF keys with a working rotation."""

import base64
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.db import connection
from rest_framework.test import APIClient

from communications.models import Channel, Conversation, RealtimeEvent
from communications.services import edits
from crm.encryption import derive_fernet_key
from integrations.matrix.models import BackfillJob, MatrixConnection, MatrixRoom
from tests import factories

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


# -- assignment ------------------------------------------------------------------------------
def test_assignment_outside_the_conversations_teams_is_a_400_naming_the_field(
    api, manager, channel
):
    conversation = factories.ConversationFactory(channel=channel)
    url = f"/api/v1/conversations/{conversation.pk}/"
    stranger = factories.UserFactory()  # active, but in no team of this channel
    foreign_team = factories.TeamFactory()
    factories.ChannelFactory().teams.add(foreign_team)
    foreign_team.members.add(stranger)

    refused = api.patch(url, {"assignee_id": stranger.pk}, format="json")
    assert refused.status_code == 400
    assert list(refused.json()) == ["assignee_id"]
    assert str(stranger.pk) in refused.json()["assignee_id"][0]

    refused = api.patch(url, {"team_id": foreign_team.pk}, format="json")
    assert refused.status_code == 400
    assert list(refused.json()) == ["team_id"]
    assert api.patch(url, {"team_id": 999999}, format="json").json() == {
        "team_id": ["team_id 999999 is not a team"]
    }
    conversation.refresh_from_db()
    assert (conversation.assignee_id, conversation.team_id) == (None, None)

    own_team = manager.teams.get()
    colleague = factories.UserFactory()
    own_team.members.add(colleague)
    admin = factories.UserFactory(is_superuser=True, is_staff=True)
    assert api.patch(url, {"assignee_id": colleague.pk}, format="json").status_code == 200
    assert api.patch(url, {"assignee_id": admin.pk}, format="json").status_code == 200
    assert api.patch(url, {"team_id": own_team.pk}, format="json").status_code == 200
    conversation.refresh_from_db()
    assert (conversation.assignee_id, conversation.team_id) == (admin.pk, own_team.pk)


@pytest.fixture
def staff_manager(client, manager):
    """A staff member (not a superuser) who may change conversations in the admin."""
    manager.is_staff = True
    manager.save()
    manager.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_conversation", "change_conversation"])
    )
    client.force_login(manager)
    return client


def test_admin_bulk_assign_refuses_conversations_outside_the_users_teams(
    staff_manager, manager, channel
):
    own = factories.ConversationFactory(channel=channel)
    foreign = factories.ConversationFactory()
    response = staff_manager.post(
        "/admin/communications/conversation/",
        {"action": "assign_to_me", "_selected_action": [own.pk, foreign.pk]},
        follow=True,
    )
    text = response.content.decode()
    assert "Assignee: you are not a member of a team" in text and f"#{foreign.pk}" in text
    assert set(Conversation.objects.values_list("assignee_id", flat=True)) == {None}

    staff_manager.post(
        "/admin/communications/conversation/",
        {"action": "assign_to_me", "_selected_action": [own.pk]},
    )
    own.refresh_from_db()
    assert own.assignee_id == manager.pk


def test_admin_change_form_refuses_an_assignee_outside_the_teams(staff_manager, channel):
    conversation = factories.ConversationFactory(channel=channel)
    stranger = factories.UserFactory()
    response = staff_manager.post(
        f"/admin/communications/conversation/{conversation.pk}/change/",
        {
            "contact": conversation.contact_id,
            "channel": channel.pk,
            "subject": "",
            "status": "open",
            "assignee": stranger.pk,
            "unread_count": 0,
            "last_message_preview": "",
        },
    )
    assert response.status_code == 200  # the form again, with the error
    assert "is not a member of a team of this conversation" in response.content.decode()
    conversation.refresh_from_db()
    assert conversation.assignee_id is None


# -- backfill is superuser-only across teams --------------------------------------------------
def test_staff_without_superuser_gets_404_for_a_foreign_rooms_backfill(db):
    owner = factories.UserFactory()
    channel = factories.ChannelFactory(kind=Channel.Kind.WHATSAPP)
    conversation = factories.ConversationFactory(channel=channel, external_id="!room:example")
    connection_ = MatrixConnection.objects.create(user=owner, matrix_user_id="@owner:example")
    room = MatrixRoom.objects.create(
        room_id="!room:example", connection=connection_, kind=MatrixRoom.Kind.PORTAL
    )
    job = BackfillJob.objects.create(room=room, conversation=conversation, requested_by=owner)
    staff = factories.UserFactory(is_staff=True)
    client = APIClient()
    client.force_authenticate(staff)
    start = client.post(f"/integrations/whatsapp/rooms/{conversation.pk}/backfill/")
    status = client.get(f"/integrations/whatsapp/backfill/{job.pk}/")
    assert (start.status_code, status.status_code) == (404, 404)

    superuser = factories.UserFactory(is_staff=True, is_superuser=True)
    client.force_authenticate(superuser)
    assert client.get(f"/integrations/whatsapp/backfill/{job.pk}/").status_code == 200


# -- redaction ---------------------------------------------------------------------------------
def test_a_redaction_wipes_the_text_its_edits_and_every_stored_copy(
    api, channel, django_capture_on_commit_callbacks
):
    conversation = factories.ConversationFactory(channel=channel)
    earlier = factories.MessageFactory(conversation=conversation, content="hello")
    message = factories.MessageFactory(
        conversation=conversation, content="my card is 4111", external_id="wamid.1"
    )
    Conversation.objects.filter(pk=conversation.pk).update(last_message_preview="my card is 4111")
    with django_capture_on_commit_callbacks(execute=True):
        edits.apply_edit(
            channel_id=channel.pk, external_id="wamid.1", content="card 4222", edit_id="e1"
        )
        edits.apply_edit(channel_id=channel.pk, external_id="wamid.1", content="oops", edit_id="e2")
    assert "4111" in str(RealtimeEvent.objects.values_list("payload", flat=True))
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert edits.apply_redaction(
            channel_id=channel.pk, external_id="wamid.1", redaction_id="r1"
        )
    assert len(callbacks) == 2  # message.updated, then conversation.updated (its preview)

    message.refresh_from_db()
    assert (message.content, message.is_deleted) == ("", True)
    assert "edits" not in message.metadata
    stored = [
        str(RealtimeEvent.objects.values_list("payload", flat=True)),
        str(Conversation.objects.values_list("last_message_preview", flat=True)),
        api.get(f"/api/v1/conversations/{conversation.pk}/messages/").content.decode(),
        api.get("/api/v1/conversations/").content.decode(),
    ]
    for text in ("4111", "4222", "oops"):
        assert not any(text in copy for copy in stored), text
    earlier.refresh_from_db()
    assert earlier.content == "hello"


# -- production keys ---------------------------------------------------------------------------
def _check_with(env_overrides: dict) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env.pop("FIELD_ENCRYPTION_KEYS", None)
    env |= {"DJANGO_SETTINGS_MODULE": "crm.settings", "DJANGO_ALLOWED_HOSTS": "example.com"}
    env |= env_overrides
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True
    )


def test_production_refuses_the_default_secret_key_and_missing_field_keys():
    no_key = _check_with({"DJANGO_DEBUG": "False"})
    assert no_key.returncode != 0
    assert "ImproperlyConfigured: DJANGO_SECRET_KEY is not set" in no_key.stderr
    no_field_keys = _check_with({"DJANGO_DEBUG": "False", "DJANGO_SECRET_KEY": "k" * 60})
    assert no_field_keys.returncode != 0
    assert "ImproperlyConfigured: FIELD_ENCRYPTION_KEYS is not set" in no_field_keys.stderr
    ready = _check_with(
        {"DJANGO_DEBUG": "False", "DJANGO_SECRET_KEY": "k" * 60, "FIELD_ENCRYPTION_KEYS": "f" * 40}
    )
    assert ready.returncode == 0, ready.stderr
    assert _check_with({"DJANGO_DEBUG": "True"}).returncode == 0  # development keeps defaults


# -- secrets at rest ---------------------------------------------------------------------------
def _stored(model, pk) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT secrets FROM {model._meta.db_table} WHERE id = %s", [pk])
        return cursor.fetchone()[0]


def _store_raw(model, pk, token: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {model._meta.db_table} SET secrets = %s WHERE id = %s", [token, pk])


def test_secrets_use_hkdf_keys_and_rotation_reencrypts_every_encrypted_field(settings):
    settings.FIELD_ENCRYPTION_KEYS = ["old-key"]
    current = factories.ChannelFactory(secrets={"inbound_token": "tok-current"})
    token = _stored(Channel, current.pk)
    assert "tok-current" not in token
    Fernet(derive_fernet_key("old-key")).decrypt(token.encode())  # HKDF, not a bare hash
    # A row written before HKDF: the key was sha256(setting).
    legacy = factories.ChannelFactory()
    legacy_key = base64.urlsafe_b64encode(hashlib.sha256(b"old-key").digest())
    _store_raw(
        Channel, legacy.pk, Fernet(legacy_key).encrypt(b'{"app_secret": "s-legacy"}').decode()
    )
    owner = factories.UserFactory()
    matrix = MatrixConnection.objects.create(
        user=owner, matrix_user_id="@m:example", secrets={"password": "pw-matrix"}
    )
    assert Channel.objects.get(pk=legacy.pk).secrets == {"app_secret": "s-legacy"}

    settings.FIELD_ENCRYPTION_KEYS = ["new-key", "old-key"]
    out = _run_rotation()
    assert "communications.Channel.secrets: 2 of 2 re-encrypted" in out
    assert "integrations.MatrixConnection.secrets: 1 of 1 re-encrypted" in out
    new = Fernet(derive_fernet_key("new-key"))
    for model, pk in ((Channel, current.pk), (Channel, legacy.pk), (MatrixConnection, matrix.pk)):
        new.decrypt(_stored(model, pk).encode())
        with pytest.raises(InvalidToken):
            Fernet(derive_fernet_key("old-key")).decrypt(_stored(model, pk).encode())
    assert "0 secret(s) re-encrypted" in _run_rotation()  # nothing left to do

    settings.FIELD_ENCRYPTION_KEYS = ["new-key"]  # the old key is gone: everything still reads
    assert Channel.objects.get(pk=current.pk).secrets == {"inbound_token": "tok-current"}
    assert Channel.objects.get(pk=legacy.pk).secrets == {"app_secret": "s-legacy"}
    assert MatrixConnection.objects.get(pk=matrix.pk).secrets == {"password": "pw-matrix"}


def _run_rotation() -> str:
    from io import StringIO

    out = StringIO()
    call_command("rotate_secrets", stdout=out)
    return out.getvalue()
