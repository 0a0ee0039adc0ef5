"""Labels by type-ahead, the `/` canned picker and `@` mentions reaching a second manager's
browser live, in real Chromium against the server."""

import re

import pytest
from playwright.sync_api import expect

from communications.models import Activity, CannedResponse, ConversationLabel, Mention
from crm.models import Label
from tests import factories

from .conftest import login
from .test_inbox_browser import open_conversation, say

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def support(transactional_db):
    channel = factories.ChannelFactory(name="Shop API")
    team = factories.TeamFactory(name="Support")
    channel.teams.add(team)
    alice = factories.UserFactory(username="alice", first_name="Alice", last_name="Ng")
    carol = factories.UserFactory(username="carol", first_name="Carol", last_name="Diaz")
    team.members.add(alice, carol)
    result = say(channel, "Where is my parcel?", sender="dana", name="Dana Scully")
    conversation = result.message.conversation
    conversation.assignee = alice
    conversation.save()
    Label.objects.create(name="vip", color="#9333ea")
    CannedResponse.objects.create(
        shortcut="ship",
        title="Shipping times",
        content="Hi {{contact.first_name}}, {{agent.name}} here: it ships today (#{{conversation.id}}).",
        team=team,
    )
    return {"channel": channel, "alice": alice, "carol": carol, "conversation": conversation}


def test_label_by_type_ahead_and_the_activity_line_appears(
    live_server_url, chromium, support, screenshot
):
    context = chromium.new_context(viewport={"width": 1440, "height": 900})
    page = login(context, live_server_url, "alice")
    conversation = support["conversation"]
    open_conversation(page, conversation)

    field = page.locator("#thread-labels input[name=add-label]")
    field.click()
    field.type("vi")
    expect(page.locator("#thread-labels .suggest-item").first).to_have_text(re.compile("vip"))
    field.press("Enter")
    expect(page.locator("#thread-labels .label-chip")).to_have_text([re.compile("vip")])
    expect(
        page.locator(f'#conversations .row[data-id="{conversation.pk}"] .label-chip')
    ).to_have_text(["vip"])
    expect(page.locator("#messages .activity-line")).to_contain_text(["Alice Ng added label vip"])

    # a label that does not exist yet is created from the same field
    field.type("urgent")
    page.locator("#thread-labels .suggest-item", has_text="Create").click()
    expect(page.locator("#thread-labels .label-chip")).to_have_count(2)
    screenshot(page, "team-labels")
    links = ConversationLabel.objects.filter(conversation=conversation)
    assert sorted(link.label.name for link in links) == ["urgent", "vip"]
    assert Activity.objects.filter(conversation=conversation, verb="labels").count() == 2

    # removing one with its × button
    page.get_by_role("button", name="Remove label vip").click()
    expect(page.locator("#thread-labels .label-chip")).to_have_count(1)
    context.close()


def test_slash_opens_the_canned_picker_and_inserts_the_filled_in_text(
    live_server_url, chromium, support
):
    context = chromium.new_context(viewport={"width": 1440, "height": 900})
    page = login(context, live_server_url, "alice")
    conversation = support["conversation"]
    open_conversation(page, conversation)
    box = page.locator("#composer textarea")
    box.click()
    box.type("/sh")
    picker = page.locator("#composer .suggest")
    expect(picker.locator(".suggest-item")).to_have_count(1)
    expect(picker).to_contain_text("/ship")
    box.press("Enter")  # picks: does not send
    expect(box).to_have_value(f"Hi Dana, Alice Ng here: it ships today (#{conversation.pk}).")
    expect(picker).to_be_hidden()

    # a personal one, made in the page's dialog: an unknown placeholder is refused by name
    page.click("#composer .canned-manage")
    dialog = page.locator("#canned-dialog")
    expect(dialog.locator(".canned-item")).to_have_count(1)
    dialog.locator("input[name=shortcut]").fill("bye")
    dialog.locator("textarea[name=content]").fill("Bye {{contact.nickname}}")
    dialog.get_by_role("button", name="Add").click()
    expect(dialog.locator(".canned-error")).to_contain_text(
        "unknown placeholder {{contact.nickname}}"
    )
    dialog.locator("textarea[name=content]").fill("Bye {{contact.first_name}}!")
    dialog.get_by_role("button", name="Add").click()
    expect(dialog.locator(".canned-item")).to_have_count(2)
    dialog.get_by_role("button", name="Close").click()
    assert CannedResponse.objects.get(shortcut="bye").owner == support["alice"]
    box.fill("")
    box.type("/by")
    # the list is fetched again after the dialog's change: pick only once it shows the new one
    expect(picker).to_contain_text("/bye")
    box.press("Enter")
    expect(box).to_have_value("Bye Dana!")
    context.close()


def test_a_mention_reaches_the_other_managers_badge_live(
    live_server_url, chromium, support, screenshot
):
    conversation = support["conversation"]
    carol_context = chromium.new_context(viewport={"width": 1280, "height": 800})
    carol = login(carol_context, live_server_url, "carol")
    badge = carol.locator("#mentions-button .mention-count")
    expect(badge).to_be_hidden()

    alice_context = chromium.new_context(viewport={"width": 1280, "height": 800})
    alice = login(alice_context, live_server_url, "alice")
    open_conversation(alice, conversation)
    alice.click("#composer [data-mode=note]")
    box = alice.locator("#composer textarea")
    box.type("Can you call her back @ca")
    expect(alice.locator("#composer .suggest-item")).to_have_text(
        [re.compile("Carol Diaz.*@carol")]
    )
    box.press("Enter")
    expect(box).to_have_value("Can you call her back @carol ")
    box.type("please")
    box.press("Enter")
    expect(alice.locator("#messages .msg.note .mention")).to_have_text("@carol")

    # carol's page, assigned to nobody of hers, hears it at once
    expect(badge).to_have_text("1")
    screenshot(carol, "team-mention-badge")
    carol.click("#mentions-button")
    item = carol.locator("#mentions-panel .mention-item.unread")
    expect(item).to_contain_text("Can you call her back @carol please")
    item.click()
    expect(carol.locator("#thread-header .head-name")).to_have_text("Dana Scully")
    expect(badge).to_be_hidden()
    assert Mention.objects.get().read_at is not None
    alice_context.close()
    carol_context.close()
