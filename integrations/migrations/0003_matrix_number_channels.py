"""One channel per connected WhatsApp number (issue 10): the conversations of the one shared
Matrix channel are split by the manager whose login the room belongs to (and the number it
was made for), each number's channel attached to its owner's teams."""

import django.db.models.deletion
import phonenumbers
from django.db import migrations, models


def _pretty(digits: str) -> str:
    if not digits:
        return ""
    try:
        parsed = phonenumbers.parse(f"+{digits}")
    except phonenumbers.NumberParseException:
        return f"+{digits}"
    return phonenumbers.format_number(
        parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL
    ).replace("-", " ")


def split_shared_channel(apps, schema_editor):
    MatrixSettings = apps.get_model("integrations", "MatrixSettings")
    MatrixRoom = apps.get_model("integrations", "MatrixRoom")
    WhatsAppNumber = apps.get_model("integrations", "WhatsAppNumber")
    Channel = apps.get_model("communications", "Channel")
    Conversation = apps.get_model("communications", "Conversation")
    Message = apps.get_model("communications", "Message")
    ContactIdentity = apps.get_model("communications", "ContactIdentity")
    EarlyStatus = apps.get_model("communications", "EarlyStatus")
    RealtimeEvent = apps.get_model("communications", "RealtimeEvent")
    Team = apps.get_model("crm", "Team")

    row = MatrixSettings.objects.filter(pk=1).first()
    shared = Channel.objects.filter(pk=row.channel_id).first() if row and row.channel_id else None
    if shared is None:
        return
    shared_teams = list(shared.teams.all())
    rooms = MatrixRoom.objects.filter(kind="portal").select_related("connection__user")
    for room in rooms.order_by("pk"):
        connection = room.connection
        phone = room.receiver or connection.phone
        number = WhatsAppNumber.objects.filter(connection=connection, phone=phone).first()
        if number is None:
            user = connection.user
            who = f"{user.first_name} {user.last_name}".strip() or user.username
            channel = Channel.objects.create(
                kind="whatsapp",
                name=f"WhatsApp {_pretty(phone) or 'number not known yet'} ({who})"[:120],
                address=_pretty(phone),
            )
            # The owner's teams; nobody loses sight of chats they saw if the owner has none.
            channel.teams.set(list(Team.objects.filter(members=user)) or shared_teams)
            number = WhatsAppNumber.objects.create(
                connection=connection, phone=phone, channel=channel
            )
        MatrixRoom.objects.filter(pk=room.pk).update(channel_id=number.channel_id)
        ids = list(
            Conversation.objects.filter(channel=shared, external_id=room.room_id).values_list(
                "id", flat=True
            )
        )
        ContactIdentity.objects.filter(channel=shared, external_id=room.room_id).update(
            channel_id=number.channel_id
        )
        if not ids:
            continue
        Conversation.objects.filter(pk__in=ids).update(channel_id=number.channel_id)
        Message.objects.filter(conversation_id__in=ids).update(channel_id=number.channel_id)
        RealtimeEvent.objects.filter(conversation_id__in=ids).update(channel_id=number.channel_id)
    if not (
        Conversation.objects.filter(channel=shared).exists()
        or Message.objects.filter(channel=shared).exists()
    ):
        # Everything moved: the shared channel would only be an empty entry in every list.
        EarlyStatus.objects.filter(channel=shared).delete()
        ContactIdentity.objects.filter(channel=shared).delete()
        RealtimeEvent.objects.filter(channel=shared).delete()
        MatrixSettings.objects.filter(pk=1).update(channel=None)
        shared.delete()


class Migration(migrations.Migration):
    dependencies = [
        ("communications", "0006_matrix_number_channels"),
        ("crm", "0001_initial"),
        ("integrations", "0002_matrix_backfill_job"),
    ]

    operations = [
        migrations.AddField(
            model_name="matrixroom",
            name="channel",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="communications.channel",
            ),
        ),
        migrations.CreateModel(
            name="WhatsAppNumber",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "phone",
                    models.CharField(help_text="digits, as the bridge reports them", max_length=32),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "channel",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="matrix_number",
                        to="communications.channel",
                    ),
                ),
                (
                    "connection",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="numbers",
                        to="integrations.matrixconnection",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("connection", "phone"), name="matrix_number_once"
                    )
                ],
            },
        ),
        # The shared channel's column goes in 0004: PostgreSQL refuses to ALTER a table in
        # the transaction that just deleted rows it references (pending trigger events).
        migrations.RunPython(split_shared_channel, migrations.RunPython.noop),
    ]
