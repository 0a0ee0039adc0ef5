"""Typing both ways on the sync path, seen in Chromium: real Synapse, the bridge emulator,
`matrix_sync`'s service in this process, and the inbox served by the live server on the same test
database and Redis. The customer's typing shows in the open thread and goes away; the
manager typing in the composer reaches the portal room as their Matrix user."""

import time

import pytest
from playwright.sync_api import expect

from communications.models import Conversation, Message
from integrations.matrix.models import MatrixRoom
from tests import factories
from tests.browser.conftest import (  # noqa: F401  (fixtures)
    chromium,
    live_server_url,
    login,
    requirements_met,
    screenshot,
    server_password_hashers,  # passwords the server can check
)

from .conftest import bridge_saw_typing, connect_manager
from .stack import SyncRunner, wait_until

pytestmark = [
    pytest.mark.matrix,
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]

CUSTOMER = "15557650000"


def test_typing_both_ways_through_the_sync_path_in_the_browser(
    stack,
    chromium,  # noqa: F811
    live_server_url,  # noqa: F811
    screenshot,  # noqa: F811
):
    stack.configure(auth_mode="admin_login", with_hs_token=False)  # no appservice push
    with SyncRunner():
        user, connection = connect_manager(stack, f"typing-ui-{time.monotonic_ns()}")
        room = stack.bridge.create_portal(connection.matrix_user_id, CUSTOMER, name="Dana")
        wait_until(lambda: MatrixRoom.objects.filter(room_id=room).exists(), what="joined")
        first = stack.bridge.send_text(room, CUSTOMER, "is my parcel on its way?")
        wait_until(lambda: Message.objects.filter(external_id=first).exists(), what="message")
        conversation = Conversation.objects.select_related("channel").get(external_id=room)
        team = factories.TeamFactory()
        conversation.channel.teams.add(team)
        team.members.add(user)

        context = chromium.new_context(viewport={"width": 1280, "height": 800})
        try:
            page = login(context, live_server_url, user.username)
            page.click(f'#conversations .row[data-id="{conversation.pk}"]')
            expect(page.locator("#messages .msg")).to_have_count(1)

            stack.bridge.send_typing(room, CUSTOMER, True)
            expect(page.locator("#presence")).to_have_text("Dana is typing…", timeout=20_000)
            screenshot(page, "matrix-customer-typing")
            stack.bridge.send_typing(room, CUSTOMER, False)
            expect(page.locator("#presence .presence-item")).to_have_count(0, timeout=20_000)

            def bridge_saw_manager_typing():
                return bridge_saw_typing(stack, room, connection.matrix_user_id)

            assert not bridge_saw_manager_typing()
            page.locator("#composer textarea").press_sequentially("On its way")
            wait_until(bridge_saw_manager_typing, 20.0, "the manager's m.typing in the room")
            # Synapse echoes the manager's own typing back to the sync: it is not the customer's
            page.wait_for_timeout(1500)
            expect(page.locator("#presence .presence-item")).to_have_count(0)
        finally:
            context.close()
