"""The shape of a Messenger / Instagram webhook delivery, as far as `parse.py` reads it.

Checked before anything is stored, so a delivery of an unexpected shape is refused whole with
a 400 naming the place (`entry[0].messaging[0].message.mid: 5 is not of type 'string'`).
Fields we do not read may be anything. Lengths follow the columns the values end up in.
"""

import jsonschema_rs
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from ..whatsapp_cloud.schema import json_path

ID = {"type": "string", "minLength": 1, "maxLength": 255}
NUMERIC_ID = {"type": ["string", "integer"], "minLength": 1, "maxLength": 255}
TEXT = {"type": "string", "maxLength": 20000}
NAME = {"type": "string", "maxLength": 255}
TIMESTAMP = {"type": ["integer", "string"], "maxLength": 20}


def _object(properties: dict, required: tuple[str, ...] = ()) -> dict:
    return {"type": "object", "properties": properties, "required": list(required)}


def _list(items: dict) -> dict:
    return {"type": "array", "items": items}


ATTACHMENT = _object(
    {
        "type": NAME,
        "payload": {
            "type": ["object", "null"],
            "properties": {"url": {"type": "string", "maxLength": 4000}, "title": NAME},
        },
        "title": NAME,
        "url": {"type": "string", "maxLength": 4000},
    },
    ("type",),
)
MESSAGE = _object(
    {
        "mid": ID,
        "text": TEXT,
        "is_echo": {"type": "boolean"},
        "is_deleted": {"type": "boolean"},
        "is_unsupported": {"type": "boolean"},
        "app_id": NUMERIC_ID,
        "metadata": {"type": "string", "maxLength": 1000},
        "attachments": _list(ATTACHMENT),
        "reply_to": _object(
            {"mid": ID, "story": _object({"id": NUMERIC_ID, "url": {"type": "string"}})}
        ),
    },
    ("mid",),
)
PARTY = _object({"id": NUMERIC_ID}, ("id",))
EVENT = _object(
    {
        "sender": PARTY,
        "recipient": PARTY,
        "timestamp": TIMESTAMP,
        "message": MESSAGE,
        "delivery": _object({"mids": _list(ID), "watermark": TIMESTAMP}),
        "read": _object({"watermark": TIMESTAMP, "mid": ID}),
        "reaction": _object(
            {"mid": ID, "action": NAME, "reaction": NAME, "emoji": {"type": "string"}},
            ("mid",),
        ),
        "postback": _object({"title": TEXT, "payload": TEXT, "mid": ID}),
    },
    ("sender", "recipient"),
)
WEBHOOK = _object(
    {
        "object": {"enum": ["page", "instagram"]},
        "entry": _list(
            _object(
                {"id": NUMERIC_ID, "time": TIMESTAMP, "messaging": _list(EVENT)},
                ("id",),
            )
        ),
    },
    ("object", "entry"),
)

_validator = Draft202012Validator(WEBHOOK)
# The same schema compiled (Rust, ~100x faster): answers the common case, a valid payload, at
# the webhook door and in the worker; jsonschema names the problem of an invalid one.
_fast = jsonschema_rs.Draft202012Validator(WEBHOOK)


def shape_error(payload) -> str | None:
    """What is wrong with the payload's shape, or None when parse.py can read it."""
    if _fast.is_valid(payload):
        return None
    error = best_match(_validator.iter_errors(payload))
    if error is None:
        return None
    return f"{json_path(error.absolute_path)}: {error.message}"
