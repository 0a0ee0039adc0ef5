"""One channel per connected WhatsApp number.

The original documents have one WhatsApp connection per CRM user: a manager who links their
number gets a channel of its own, named after the number and the manager, attached to that
manager's teams the moment it is created (so a plain manager sees their chats at once; staff
re-team or share it in the admin afterwards). A portal room belongs to the number the bridge
made it for (`fi.mau.receiver`), and so does its conversation: replies leave from that number.
"""

import phonenumbers
from django.db import IntegrityError, transaction

from communications import events as realtime
from communications.models import Channel
from crm.models import Team

from .models import MatrixConnection, MatrixRoom, WhatsAppNumber


def pretty_phone(digits: str) -> str:
    """'15557654321' → '+1 555 765 4321' (spaces, as a person writes it)."""
    if not digits:
        return ""
    try:
        parsed = phonenumbers.parse(f"+{digits}")
    except phonenumbers.NumberParseException:
        return f"+{digits}"
    formatted = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    return formatted.replace("-", " ")


def channel_name(connection: MatrixConnection, phone: str) -> str:
    user = connection.user
    who = user.get_full_name() or user.get_username()
    number = pretty_phone(phone) or "number not known yet"
    return f"WhatsApp {number} ({who})"[:120]


def number_channel(connection: MatrixConnection, phone: str) -> Channel:
    """The channel of `phone` as connected by this manager; created (once) on first use."""
    number = (
        WhatsAppNumber.objects.select_related("channel")
        .filter(connection=connection, phone=phone)
        .first()
    )
    if number is not None:
        return number.channel
    with transaction.atomic():
        # Concurrent first events of one number (sync and appservice both) create one channel.
        MatrixConnection.objects.select_for_update().filter(pk=connection.pk).first()
        number = (
            WhatsAppNumber.objects.select_related("channel")
            .filter(connection=connection, phone=phone)
            .first()
        )
        if number is not None:
            return number.channel
        channel = Channel.objects.create(
            kind=Channel.Kind.WHATSAPP,
            name=channel_name(connection, phone),
            address=pretty_phone(phone),
        )
        channel.teams.set(_teams_of(connection.user))
        WhatsAppNumber.objects.create(connection=connection, phone=phone, channel=channel)
        realtime.access_changed()  # the owner's open inboxes join it as soon as this commits
    return channel


def _teams_of(user) -> list[Team]:
    """The owner's teams; a manager in no team gets one of their own, or nobody but
    superusers would see the number's chats."""
    teams = list(user.teams.all())
    if teams:
        return teams
    name = f"WhatsApp of {user.get_username()}"[:120]
    try:
        with transaction.atomic():
            team, _ = Team.objects.get_or_create(name=name)
    except IntegrityError:
        team = Team.objects.get(name=name)
    team.members.add(user)
    return [team]


def room_channel(room: MatrixRoom) -> Channel:
    """The channel a portal's conversation lives in: its number's (the room's receiver)."""
    if room.channel_id is not None:
        return room.channel
    connection = room.connection
    channel = number_channel(connection, room.receiver or connection.phone)
    MatrixRoom.objects.filter(pk=room.pk).update(channel=channel)
    room.channel = channel
    return channel
