"""The activity log: every path that changes a conversation writes its line in the change's
transaction; the API lists it with a cursor; the thread gets it with the conversation."""

from datetime import timedelta

from django.utils import timezone

from communications.models import Activity, Conversation, RealtimeEvent
from tests import factories

from .conftest import api_for


def lines(conversation) -> list[str]:
    url = f"/api/v1/conversations/{conversation.pk}/activity/?page_size=200"
    return [
        row["text"] for row in reversed(api_for(conversation._viewer).get(url).json()["results"])
    ]


def test_status_assignment_team_snooze_and_archive_from_the_api(teams):
    conversation = teams["conversation"]
    conversation._viewer = teams["alice"]
    api = api_for(teams["alice"])
    url = f"/api/v1/conversations/{conversation.pk}/"
    api.patch(url, {"assignee_id": teams["carol"].pk}, format="json")
    api.patch(url, {"assignee_id": teams["alice"].pk}, format="json")
    api.patch(url, {"status": "resolved"}, format="json")
    api.patch(url, {"status": "open"}, format="json")
    api.patch(url, {"status": "snoozed", "snoozed_until": "2030-01-02T09:00:00Z"}, format="json")
    api.patch(url, {"team_id": teams["support"].pk}, format="json")
    api.patch(url, {"is_archived": True}, format="json")
    api.patch(url, {"assignee_id": None}, format="json")
    api.patch(url, {"status": "snoozed", "snoozed_until": "2030-01-02T09:00:00Z"}, format="json")
    assert lines(conversation) == [
        "Alice Ng assigned this to Carol Diaz",
        "Alice Ng self-assigned this",
        "Alice Ng resolved this",
        "Alice Ng reopened this",
        "Alice Ng snoozed this until 2030-01-02 09:00 UTC",
        "Alice Ng moved this to team Support",
        "Alice Ng archived this",
        "Alice Ng unassigned Alice Ng",
    ]  # the last PATCH changed nothing: no line
    first = Activity.objects.order_by("id").first()
    assert first.before == {"assignee": None}
    assert first.after == {"assignee": {"id": teams["carol"].pk, "name": "Carol Diaz"}}


def test_a_rejected_change_writes_no_line(teams):
    conversation = teams["conversation"]
    response = api_for(teams["alice"]).patch(
        f"/api/v1/conversations/{conversation.pk}/", {"assignee_id": teams["bob"].pk}, format="json"
    )
    assert response.status_code == 400
    assert not Activity.objects.exists()


def test_activity_events_are_recorded_with_the_update(teams):
    conversation = teams["conversation"]
    api_for(teams["alice"]).patch(
        f"/api/v1/conversations/{conversation.pk}/", {"status": "pending"}, format="json"
    )
    stored = list(RealtimeEvent.objects.order_by("id").values_list("type", "payload"))
    assert [t for t, _ in stored] == ["conversation.updated", "activity.created"]
    line = stored[1][1]
    assert line["actor"] == {"id": teams["alice"].pk, "name": "Alice Ng"}
    assert line["verb"] == "status" and line["text"] == "Alice Ng set the status to pending"
    assert line["conversation_id"] == conversation.pk


def test_admin_bulk_and_change_form_write_lines(teams, client):
    boss = factories.UserFactory(
        username="boss", first_name="Dana", is_staff=True, is_superuser=True
    )
    client.force_login(boss)
    conversation = teams["conversation"]
    url = "/admin/communications/conversation/"
    client.post(url, {"action": "resolve", "_selected_action": [conversation.pk]})
    client.post(url, {"action": "resolve", "_selected_action": [conversation.pk]})  # no change
    client.post(url, {"action": "assign_to_me", "_selected_action": [conversation.pk]})
    texts = [
        row["text"]
        for row in api_for(boss)
        .get(f"/api/v1/conversations/{conversation.pk}/activity/")
        .json()["results"]
    ]
    assert texts == ["Dana self-assigned this", "Dana resolved this"]

    conversation.refresh_from_db()
    change_url = f"{url}{conversation.pk}/change/"
    form = {
        "channel": conversation.channel_id,
        "contact": conversation.contact_id,
        "external_id": conversation.external_id,
        "subject": "",
        "status": "open",
        "snoozed_until_0": "",
        "snoozed_until_1": "",
        "assignee": teams["carol"].pk,
        "team": "",
        "unread_count": 0,
        "last_message_at_0": conversation.last_message_at.strftime("%Y-%m-%d"),
        "last_message_at_1": conversation.last_message_at.strftime("%H:%M:%S"),
        "last_message_preview": "",
        "version": conversation.version,
        "label_links-TOTAL_FORMS": 0,
        "label_links-INITIAL_FORMS": 0,
        "activity-TOTAL_FORMS": 0,
        "activity-INITIAL_FORMS": 0,
    }
    response = client.post(change_url, form)
    assert response.status_code == 302, [
        (k, v)
        for k, v in (response.context["adminform"].form.errors.items() if response.context else [])
    ] + [
        str(f.formset.errors) + str(f.formset.non_form_errors()) + f.formset.prefix
        for f in response.context["inline_admin_formsets"]
    ]
    conversation.refresh_from_db()
    assert conversation.assignee == teams["carol"]
    # (the thread's lines; the admin sign-in is an audit row of its own)
    lines = Activity.objects.filter(conversation__isnull=False).order_by("id")
    assert list(lines.values_list("verb", flat=True)) == ["status", "assigned", "assigned"]
    assert lines.last().actor == boss
    # the bulk actions announce every selected row (changed or not), the form its change
    assert RealtimeEvent.objects.filter(type="conversation.updated").count() == 4


def test_activity_pages_by_cursor_with_fixed_queries(teams, count_queries):
    conversation = teams["conversation"]
    now = timezone.now()
    Activity.objects.bulk_create(
        [
            Activity(
                conversation=conversation,
                actor_name="Dana",
                verb="status",
                after={"status": "pending"},
                created_at=now - timedelta(minutes=n),
            )
            for n in range(30)
        ]
    )
    api = api_for(teams["alice"])
    url = f"/api/v1/conversations/{conversation.pk}/activity/"
    with count_queries() as first_page:
        first = api.get(f"{url}?page_size=20").json()
    # token, access check (the manager's channels as a subquery), the page
    assert first_page.count == 3, first_page.explain()
    second = api.get(f"{url}?page_size=20&before={first['next_cursor']}").json()
    assert len(first["results"]) == 20 and len(second["results"]) == 10
    assert second["next_cursor"] is None
    ids = [row["id"] for row in first["results"] + second["results"]]
    assert len(set(ids)) == 30
    assert api.get(f"{url}?before=nonsense").status_code == 400
    assert api.get(f"/api/v1/conversations/{teams['foreign'].pk}/activity/").status_code == 404


def test_the_thread_opens_with_its_recent_activity(teams, client):
    conversation = teams["conversation"]
    api_for(teams["alice"]).patch(
        f"/api/v1/conversations/{conversation.pk}/", {"status": "resolved"}, format="json"
    )
    client.force_login(teams["carol"])
    opened = client.get(f"/inbox/c/{conversation.pk}/").json()
    assert [a["text"] for a in opened["conversation"]["activity"]] == ["Alice Ng resolved this"]
    assert Conversation.objects.get(pk=conversation.pk).status == "resolved"
