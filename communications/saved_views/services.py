"""Saved views: who sees which, the one validation of their filters, their conditions, changes.

A view's filters are the inbox list's own (selectors.VIEW_FILTERS), checked by the list's own
parser (selectors.conversation_filter) and stored in one canonical form, so the list a view
opens, its count (counts.inbox_counts, the same condition) and the page's live count
(static/inbox/views.js, the same rules on an event's state) agree.
"""

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Q
from rest_framework.exceptions import ValidationError

from crm.models import Label, Team

from .. import events
from ..access import visible_channel_ids
from ..selectors import VIEW_FILTERS, conversation_filter
from ..serializers import _time, _user_name
from ..services.canned import team_choices
from .models import SavedView

VIEWS_CHANGED = "views.changed"  # to the sockets of everyone who sees the view
NAME_MAX = 80


class ViewRejected(Exception):
    def __init__(self, detail):
        super().__init__(str(detail))
        self.detail = detail


def views_for(user):
    """The user's own views and those shared with their teams, by name."""
    if not user.is_authenticated:
        return SavedView.objects.none()
    teams = Team.objects.filter(members=user).values("id")
    return SavedView.objects.filter(Q(owner=user) | Q(team_id__in=teams)).select_related(
        "owner", "team"
    )


def can_change(user, view: SavedView) -> bool:
    """Only its owner, or staff, may rename, change or delete a view."""
    return view.owner_id == user.pk or user.is_staff


def filter_params(filters: dict) -> dict[str, str]:
    """A view's stored filters as the list's query parameters (`?status=open&unread=true`)."""
    params = {}
    for key in VIEW_FILTERS:
        value = filters.get(key)
        if value is None or value is False or value == "":
            continue
        params[key] = "true" if value is True else str(value)
    return params


def view_condition(user, view: SavedView) -> Q:
    """The view's filters as the list applies them for `user` ("me" is the viewer)."""
    return conversation_filter(user, filter_params(view.filters or {}))


def clean_filters(user, raw) -> dict:
    """`raw` checked by the list's own parser and put in canonical form: ids as numbers,
    "unassigned" as "none", unread only when true. Unknown keys, bad values and ids of nothing
    the user can pick are a ViewRejected naming each."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ViewRejected({"filters": ['must be an object such as {"status": "open"}']})
    unknown = [key for key in raw if key not in VIEW_FILTERS]
    if unknown:
        listed = ", ".join(repr(key) for key in unknown)
        raise ViewRejected(
            {"filters": [f"unknown filter {listed}: a view holds {', '.join(VIEW_FILTERS)}"]}
        )
    params, problems = {}, {}
    for key, value in raw.items():
        if value is None or value == "":
            continue
        if isinstance(value, bool):
            if key != "unread":
                problems[key] = [f"{str(value).lower()} is not a value of {key}"]
                continue
            value = "true" if value else "false"
        elif isinstance(value, int):
            value = str(value)
        elif not isinstance(value, str):
            problems[key] = [f"{value!r} is not a value of {key}"]
            continue
        params[key] = value
    if problems:
        raise ViewRejected({"filters": problems})
    try:
        conversation_filter(user, params)  # the list's own checks, naming the parameter
    except ValidationError as exc:
        raise ViewRejected({"filters": exc.detail}) from exc
    cleaned: dict = {}
    if params.get("status"):
        cleaned["status"] = params["status"]
    if params.get("channel"):
        cleaned["channel"] = int(params["channel"])
    for key in ("assignee", "team"):
        value = params.get(key)
        if value in ("none", "unassigned"):
            cleaned[key] = "none"
        elif value == "me" and key == "assignee":
            cleaned[key] = "me"
        elif value:
            cleaned[key] = int(value)
    if params.get("label"):
        cleaned["label"] = int(params["label"])
    if params.get("unread", "").lower() in ("true", "1"):
        cleaned["unread"] = True
    _check_ids_exist(user, cleaned)
    return cleaned


def _check_ids_exist(user, cleaned: dict) -> None:
    """An id of nothing the user can filter by is refused: one query per id given."""
    problems = {}
    channel = cleaned.get("channel")
    if channel is not None:
        visible = visible_channel_ids(user)
        if visible is not None and channel not in visible:
            problems["channel"] = [f"no channel {channel} that you can see"]
        elif visible is None and not _channel_exists(channel):
            problems["channel"] = [f"no channel {channel}"]
    if isinstance(cleaned.get("assignee"), int):
        if not get_user_model().objects.filter(pk=cleaned["assignee"], is_active=True).exists():
            problems["assignee"] = [f"no active user {cleaned['assignee']}"]
    if isinstance(cleaned.get("team"), int):
        if not Team.objects.filter(pk=cleaned["team"]).exists():
            problems["team"] = [f"no team {cleaned['team']}"]
    if "label" in cleaned and not Label.objects.filter(pk=cleaned["label"]).exists():
        problems["label"] = [f"no label {cleaned['label']}"]
    if problems:
        raise ViewRejected({"filters": problems})


def _channel_exists(channel_id: int) -> bool:
    from ..models import Channel

    return Channel.objects.filter(pk=channel_id).exists()


def _clean_name(name) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ViewRejected({"name": ["a view needs a name"]})
    name = name.strip()
    if len(name) > NAME_MAX:
        raise ViewRejected({"name": [f"at most {NAME_MAX} characters"]})
    return name


def _team_for(owner, team_id) -> Team | None:
    """The team a view is shared with: one of its owner's teams; None: private."""
    if team_id is None:
        return None
    if isinstance(team_id, bool) or not isinstance(team_id, int):
        raise ViewRejected({"team_id": [f"{team_id!r} is not a team id"]})
    team = team_choices(owner).filter(pk=team_id).first()
    if team is None:
        raise ViewRejected({"team_id": [f"team {team_id} is not one of the owner's teams"]})
    return team


def create_view(user, *, name, filters, team_id=None) -> SavedView:
    view = SavedView(
        owner=user,
        name=_clean_name(name),
        filters=clean_filters(user, filters),
        team=_team_for(user, team_id),
    )
    save_view(view, previous_team_id=None)
    return view


def update_view(user, view: SavedView, changes: dict) -> SavedView:
    """Rename, refilter or (un)share `view` (the caller checked can_change). A team must be one
    of the owner's; filter ids are checked as the one making the change sees them."""
    previous_team_id = view.team_id
    if "name" in changes:
        view.name = _clean_name(changes["name"])
    if "filters" in changes:
        view.filters = clean_filters(user, changes["filters"])
    if "team_id" in changes:
        view.team = _team_for(view.owner, changes["team_id"])
    save_view(view, previous_team_id=previous_team_id)
    return view


def delete_view(view: SavedView) -> None:
    with transaction.atomic():
        team_id = view.team_id
        payload = {"id": view.pk, "deleted": True, "updated_at": None}
        view.delete()
        _announce(view.owner_id, {team_id, None}, payload)


def save_view(view: SavedView, *, previous_team_id) -> None:
    """Store `view` (checked) and tell the sockets of everyone who sees or saw it."""
    try:
        with transaction.atomic():
            view.save()
            payload = {"id": view.pk, "deleted": False, "updated_at": _time(view.updated_at)}
            _announce(view.owner_id, {view.team_id, previous_team_id}, payload)
    except IntegrityError:
        raise ViewRejected({"name": [f"you already have a view named {view.name!r}"]}) from None


def _announce(owner_id: int, team_ids: set, payload: dict) -> None:
    """`views.changed` to the owner's and the teams' members' open inboxes (after commit):
    their sidebars read the views and counts again."""
    team_ids = [t for t in team_ids if t is not None]
    links = Team.members.through.objects.filter(team_id__in=team_ids)
    members = list(links.values_list("user_id", flat=True)) if team_ids else []
    events.record_user_events(VIEWS_CHANGED, user_ids=[owner_id, *members], payload=payload)


def view_payload(view: SavedView, user) -> dict:
    return {
        "id": view.pk,
        "name": view.name,
        "filters": view.filters,
        "params": filter_params(view.filters),
        "shared": view.team_id is not None,
        "team": {"id": view.team_id, "name": view.team.name} if view.team_id else None,
        "owner": {"id": view.owner_id, "name": _user_name(view.owner)},
        "can_edit": can_change(user, view),
        "created_at": _time(view.created_at),
        "updated_at": _time(view.updated_at),
    }


def view_counts_conditions(user, views) -> dict[int, Q]:
    """Each view's condition for `user`, for counts.inbox_counts (one statement for all).
    A stored filter the list no longer accepts counts nothing rather than failing the page."""
    conditions = {}
    for view in views:
        try:
            conditions[view.pk] = view_condition(user, view)
        except ValidationError:
            conditions[view.pk] = Q(pk__in=[])
    return conditions
