"""Saved views in the admin (staff see and change every one, with the API's checks) and in
the demo data (shared and private views, their counts on the demo manager's page)."""

import pytest
from django.core.management import call_command

from communications.models import RealtimeEvent
from communications.pages import inbox_counts
from communications.saved_views.models import SavedView
from communications.saved_views.services import views_for
from tests import factories

pytestmark = pytest.mark.django_db


def test_staff_see_and_change_every_view_with_the_apis_checks(client, teams):
    admin = factories.UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(admin)
    private = SavedView.objects.create(owner=teams["bob"], name="Bob's own", filters={})
    listing = client.get("/admin/saved_views/savedview/")
    assert listing.status_code == 200 and b"Bob&#x27;s own" in listing.content
    url = f"/admin/saved_views/savedview/{private.pk}/change/"
    form = {"name": "Bob open", "owner": teams["bob"].pk, "team": teams["support"].pk}
    refused = client.post(url, form | {"filters": '{"status": "closed", "q": "x"}'})
    assert refused.status_code == 200
    assert b"unknown filter &#x27;q&#x27;" in refused.content
    assert b"is not one of bob&#x27;s teams" in refused.content
    saved = client.post(
        url, form | {"team": teams["sales"].pk, "filters": '{"assignee": "unassigned"}'}
    )
    assert saved.status_code == 302
    private.refresh_from_db()
    assert (private.name, private.team, private.filters) == (
        "Bob open",
        teams["sales"],
        {"assignee": "none"},
    )
    assert RealtimeEvent.objects.filter(type="views.changed", user_id=teams["bob"].pk).exists()
    client.post(f"/admin/saved_views/savedview/{private.pk}/delete/", {"post": "yes"})
    assert not SavedView.objects.exists()


def test_demo_data_has_shared_and_private_views(django_user_model):
    call_command("seed_demo")
    manager = django_user_model.objects.get(username="manager")
    alex = django_user_model.objects.get(username="alex")
    mine = {view.name: view for view in views_for(manager)}
    assert {"My open", "Unassigned & unread", "VIP open", "Snoozed by the team"} <= set(mine)
    assert "Refunds" not in mine  # alex's private one
    assert "Refunds" in {view.name for view in views_for(alex)}
    assert mine["VIP open"].team is None and mine["My open"].team is not None
    counts = inbox_counts(manager)["views"]
    assert counts[str(mine["VIP open"].pk)] >= 1  # Olena, labelled vip in the demo
    call_command("seed_demo")
    assert SavedView.objects.count() == 5
