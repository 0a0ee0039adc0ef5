"""The demo's Messenger and Instagram conversations can be answered (inside the window)."""

import pytest
from django.core.management import call_command

from communications.models import Channel, Conversation
from communications.providers import reply_unavailable_reason

pytestmark = pytest.mark.django_db


def test_demo_meta_conversations_are_answerable_and_the_old_ones_say_why_not():
    call_command("seed_demo")
    for kind in (Channel.Kind.MESSENGER, Channel.Kind.INSTAGRAM):
        reasons = [
            reply_unavailable_reason(c.channel, c)
            for c in Conversation.objects.select_related("channel").filter(channel__kind=kind)
        ]
        assert "" in reasons, kind
        assert any(r.startswith("the customer last wrote more than 24 hours ago") for r in reasons)
