"""Canned responses: saved replies with placeholders filled in for the open conversation.

Placeholders are `{{contact.name}}`, `{{contact.first_name}}`, `{{agent.name}}` and
`{{conversation.id}}` (spaces inside the braces allowed). Anything else in double braces is
refused when saving, naming it, so a typo never reaches a customer.
"""

import re

from django.db.models import Q

from crm.models import Team

from ..models import CannedResponse, Conversation
from ..serializers import _user_name

PLACEHOLDER_PATTERN = re.compile(r"\{\{\s*(.*?)\s*\}\}")
PLACEHOLDERS = ("contact.name", "contact.first_name", "agent.name", "conversation.id")


def unknown_placeholders(content: str) -> list[str]:
    return [
        name
        for name in dict.fromkeys(PLACEHOLDER_PATTERN.findall(content or ""))
        if name not in PLACEHOLDERS
    ]


def placeholder_problem(content: str) -> str | None:
    """Why `content` cannot be saved, or None."""
    unknown = unknown_placeholders(content)
    if not unknown:
        return None
    names = ", ".join("{{" + name + "}}" for name in unknown)
    known = ", ".join("{{" + name + "}}" for name in PLACEHOLDERS)
    word = "placeholder" if len(unknown) == 1 else "placeholders"
    return f"unknown {word} {names}: use {known}"


def render(content: str, *, conversation: Conversation, agent) -> str:
    contact = conversation.contact
    name = contact.name or contact.username or ""
    values = {
        "contact.name": name,
        "contact.first_name": name.split()[0] if name.split() else "",
        "agent.name": _user_name(agent) if agent is not None else "",
        "conversation.id": str(conversation.pk),
    }
    return PLACEHOLDER_PATTERN.sub(lambda m: values.get(m.group(1), m.group(0)), content)


def canned_for(user):
    """The user's personal responses and those of their teams (superusers: every team's)."""
    responses = CannedResponse.objects.select_related("team")
    if user.is_superuser:
        return responses.filter(Q(owner=user) | Q(team__isnull=False))
    return responses.filter(Q(owner=user) | Q(team__in=Team.objects.filter(members=user)))


def team_choices(user):
    return Team.objects.all() if user.is_superuser else Team.objects.filter(members=user)
