"""manage.py simulate_inbound: real ingest path, exact counts, re-deliveries stored once."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Sum

from communications.models import Attachment, Channel, Conversation, Message
from tests import factories


def simulate(*args) -> str:
    out = StringIO()
    call_command("simulate_inbound", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_stores_each_message_once_and_recognises_redeliveries(channel):
    other = factories.ChannelFactory()
    output = simulate(
        "--channel",
        str(channel.pk),
        "--rate",
        "5000",
        "--seconds",
        "0.04",
        "--conversations",
        "30",
        "--duplicates",
        "0.1",
        "--seed",
        "7",
        "--run-id",
        "t1",
    )

    # 200 deliveries, 20 of them re-deliveries of earlier messages.
    assert "sent 200 (180 unique, 20 re-delivered), stored 180, duplicates 20" in output
    stored = Message.objects.filter(channel=channel)
    assert stored.count() == 180
    assert stored.values("external_id").distinct().count() == 180
    assert set(stored.values_list("direction", "status").distinct()) == {("in", "received")}
    assert not Message.objects.filter(channel=other).exists()
    conversations = Conversation.objects.filter(channel=channel)
    assert 1 <= conversations.count() <= 30
    assert all(c.external_id.startswith("sim-t1-") for c in conversations)
    # Every stored inbound message counted once as unread, none for the re-deliveries.
    assert conversations.aggregate(total=Sum("unread_count"))["total"] == 180


@pytest.mark.django_db
def test_running_again_with_the_same_run_id_stores_nothing_new(channel):
    args = [
        "--channel",
        str(channel.pk),
        "--rate",
        "5000",
        "--seconds",
        "0.01",
        "--seed",
        "3",
        "--run-id",
        "again",
    ]
    first = simulate(*args)
    second = simulate(*args)
    assert "stored 50, duplicates 0" in first
    assert "stored 0, duplicates 50" in second
    assert Message.objects.filter(channel=channel).count() == 50


@pytest.mark.django_db
def test_channel_by_kind_and_media(settings, tmp_path, django_capture_on_commit_callbacks):
    settings.MEDIA_ROOT = tmp_path
    factories.ChannelFactory(kind=Channel.Kind.API)
    telegram = factories.ChannelFactory(kind=Channel.Kind.TELEGRAM)
    with django_capture_on_commit_callbacks(execute=True):  # files are written after commit
        output = simulate(
            "--channel",
            "telegram",
            "--rate",
            "5000",
            "--seconds",
            "0.08",
            "--media",
            "--seed",
            "11",
        )
    assert f"channel {telegram.pk} (telegram)" in output
    assert Message.objects.filter(channel=telegram).count() == 400
    images = Attachment.objects.filter(message__channel=telegram)
    assert images.exists()
    assert images.count() == Message.objects.filter(channel=telegram, kind="image").count()
    for attachment in images[:5]:
        with attachment.file.open("rb") as handle:
            data = handle.read()
        assert data.startswith(b"\x89PNG\r\n\x1a\n")
        assert attachment.size == len(data)
        assert attachment.mime_type == "image/png"


@pytest.mark.django_db
def test_unknown_channel_is_a_clear_error(channel):
    with pytest.raises(CommandError, match="no channel 'fax'"):
        simulate("--channel", "fax", "--seconds", "1")
    with pytest.raises(CommandError, match="fraction"):
        simulate("--channel", str(channel.pk), "--duplicates", "1.5")
