"""Demo saved views (seed_demo): a couple shared with the team, a couple private."""

from crm.models import Label

from .models import SavedView
from .services import clean_filters, save_view


def seed_saved_views(*, manager, colleague, team) -> None:
    """Idempotent: a view that exists (by owner and name) is left alone."""
    vip = Label.objects.filter(name__iexact="vip").values_list("id", flat=True).first()
    refund = Label.objects.filter(name__iexact="refund").values_list("id", flat=True).first()
    plan = [
        (manager, "My open", {"status": "open", "assignee": "me"}, team),  # "me": each viewer
        (manager, "Unassigned & unread", {"assignee": "none", "unread": True}, team),
        (
            manager,
            "VIP open",
            {"status": "open", "label": vip} if vip else {"status": "open"},
            None,
        ),
        (colleague, "Refunds", {"label": refund} if refund else {"status": "pending"}, None),
        (colleague, "Snoozed by the team", {"status": "snoozed", "team": team.pk}, team),
    ]
    for owner, name, filters, shared_with in plan:
        if SavedView.objects.filter(owner=owner, name__iexact=name).exists():
            continue
        view = SavedView(
            owner=owner, name=name, filters=clean_filters(owner, filters), team=shared_with
        )
        save_view(view, previous_team_id=None)
