"""Telling managers that something happened: desktop notifications (the page), sounds, the
installable inbox (PWA) and Web Push to their devices when the page is closed.

`notify_mention(user, note_message)` is the hook for mentions in private notes; inbound
messages are handled by the ingest path (`services.notify_inbound_messages`). Pushes are sent
by the worker after commit (tasks.py), never in the request.
"""


def notify_mention(user, note_message) -> bool:
    """`user` was mentioned in the private note `note_message`: push to their devices (after
    commit, by the worker), if their settings ask for it. Returns whether a push was queued."""
    from .services import notify_mention as notify

    return notify(user, note_message)
