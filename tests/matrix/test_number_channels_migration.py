"""The data migration that splits the one shared Matrix channel by the room's owner."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [
    ("integrations", "0002_matrix_backfill_job"),
    ("communications", "0003_early_status"),
    ("crm", "0002_long_jobs"),  # the schema of that time: no later contact columns
]
AFTER = [("integrations", "0004_remove_matrixsettings_channel")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture
def old_apps():
    apps = _migrate(BEFORE)
    yield apps
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())  # back to the latest schema


def test_the_shared_channel_is_split_by_the_room_owner(old_apps):
    User = old_apps.get_model("auth", "User")
    Team = old_apps.get_model("crm", "Team")
    Contact = old_apps.get_model("crm", "Contact")
    Channel = old_apps.get_model("communications", "Channel")
    Conversation = old_apps.get_model("communications", "Conversation")
    Message = old_apps.get_model("communications", "Message")
    Identity = old_apps.get_model("communications", "ContactIdentity")
    Settings = old_apps.get_model("integrations", "MatrixSettings")
    Connection = old_apps.get_model("integrations", "MatrixConnection")
    Room = old_apps.get_model("integrations", "MatrixRoom")

    shared = Channel.objects.create(kind="whatsapp", name="WhatsApp")
    old_team = Team.objects.create(name="everyone")
    shared.teams.add(old_team)
    Settings.objects.create(pk=1, channel=shared)
    ann = User.objects.create(username="ann", first_name="Ann", last_name="Lee")
    bob = User.objects.create(username="bob")  # in no team
    ann_team = Team.objects.create(name="ann's team")
    ann_team.members.add(ann)
    ann_conn = Connection.objects.create(
        user=ann, matrix_user_id="@a:hs", phone="15557654321", state="connected"
    )
    bob_conn = Connection.objects.create(
        user=bob, matrix_user_id="@b:hs", phone="15550000002", state="disconnected"
    )
    rooms = {
        "!ann1": (ann_conn, "15557654321"),
        "!ann2": (ann_conn, "15557654321"),
        "!ann-old-number": (ann_conn, "15559990000"),
        "!bob1": (bob_conn, ""),  # no receiver: the connection's number
    }
    now = timezone.now()
    for room_id, (conn, receiver) in rooms.items():
        Room.objects.create(room_id=room_id, connection=conn, kind="portal", receiver=receiver)
        contact = Contact.objects.create(name=room_id)
        Identity.objects.create(channel=shared, contact=contact, external_id=room_id)
        conversation = Conversation.objects.create(
            channel=shared, contact=contact, external_id=room_id
        )
        for n in range(2):
            Message.objects.create(
                conversation=conversation,
                channel=shared,
                direction="in",
                status="received",
                external_id=f"${room_id}-{n}",
                created_at=now,
            )

    apps = _migrate(AFTER)
    Channel = apps.get_model("communications", "Channel")
    Conversation = apps.get_model("communications", "Conversation")
    Message = apps.get_model("communications", "Message")
    Identity = apps.get_model("communications", "ContactIdentity")
    Number = apps.get_model("integrations", "WhatsAppNumber")
    Room = apps.get_model("integrations", "MatrixRoom")

    assert not Channel.objects.filter(pk=shared.pk).exists()  # emptied, removed
    numbers = {(n.connection.user.username, n.phone): n for n in Number.objects.all()}
    assert set(numbers) == {
        ("ann", "15557654321"),
        ("ann", "15559990000"),
        ("bob", "15550000002"),
    }
    ann_channel = numbers["ann", "15557654321"].channel
    assert ann_channel.name == "WhatsApp +1 555 765 4321 (Ann Lee)"
    assert ann_channel.address == "+1 555 765 4321"
    assert [t.name for t in ann_channel.teams.all()] == ["ann's team"]
    # Bob is in no team: the chats stay with whoever saw them before.
    assert [t.name for t in numbers["bob", "15550000002"].channel.teams.all()] == ["everyone"]
    for room_id, (conn, receiver) in rooms.items():
        number = numbers[conn.user.username, receiver or conn.phone]
        conversation = Conversation.objects.get(external_id=room_id)
        assert conversation.channel_id == number.channel_id, room_id
        assert set(
            Message.objects.filter(conversation=conversation).values_list("channel_id", flat=True)
        ) == {number.channel_id}
        assert Identity.objects.get(external_id=room_id).channel_id == number.channel_id
        assert Room.objects.get(room_id=room_id).channel_id == number.channel_id
    assert Message.objects.count() == 8
