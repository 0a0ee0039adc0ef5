"""The shape of a Telegram `Update`, as far as `parse.py` reads it (JSON Schema).

Checked at the door, so an update of an unexpected shape is refused whole with a 400 naming
the place (`message.chat.id: 'x' is not of type 'integer'`). Update kinds we do not read
(callback_query, my_chat_member…) pass: Telegram sends them legitimately and they are kept
in the webhook log and ignored. Fields we do not read may be anything.
"""

import jsonschema_rs
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from ..whatsapp_cloud.schema import json_path

# Telegram ids have up to 52 significant bits; keep them inside what fits our columns.
ID = {"type": "integer", "minimum": -(2**53), "maximum": 2**53}
TEXT = {"type": "string", "maxLength": 20000}
NAME = {"type": "string", "maxLength": 255}
FILE_ID = {"type": "string", "minLength": 1, "maxLength": 500}
SMALL = {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}


def _object(properties: dict, required: tuple[str, ...] = ()) -> dict:
    return {"type": "object", "properties": properties, "required": list(required)}


PHOTO_SIZE = _object(
    {"file_id": FILE_ID, "file_unique_id": NAME, "width": SMALL, "height": SMALL, "file_size": ID},
    ("file_id",),
)
FILE = _object(
    {
        "file_id": FILE_ID,
        "file_unique_id": NAME,
        "file_name": NAME,
        "mime_type": NAME,
        "file_size": ID,
        "width": SMALL,
        "height": SMALL,
        "duration": SMALL,
        "thumbnail": PHOTO_SIZE,
    },
    ("file_id",),
)
STICKER = _object(
    {
        "file_id": FILE_ID,
        "file_unique_id": NAME,
        "is_animated": {"type": "boolean"},
        "is_video": {"type": "boolean"},
        "emoji": NAME,
        "width": SMALL,
        "height": SMALL,
        "thumbnail": PHOTO_SIZE,
    },
    ("file_id",),
)
USER = _object(
    {"id": ID, "first_name": NAME, "last_name": NAME, "username": NAME, "is_bot": {}}, ("id",)
)
COORDINATE = {"type": "number", "minimum": -180, "maximum": 180}
MESSAGE = _object(
    {
        "message_id": ID,
        "date": ID,
        "edit_date": ID,
        "chat": _object(
            {"id": ID, "type": NAME, "title": NAME, "username": NAME, "first_name": NAME},
            ("id",),
        ),
        "from": USER,
        "text": TEXT,
        "caption": TEXT,
        "photo": {"type": "array", "items": PHOTO_SIZE, "minItems": 1},
        "video": FILE,
        "video_note": FILE,
        "animation": FILE,
        "voice": FILE,
        "audio": FILE,
        "document": FILE,
        "sticker": STICKER,
        "location": _object(
            {"latitude": COORDINATE, "longitude": COORDINATE}, ("latitude", "longitude")
        ),
        "venue": _object({"title": NAME, "address": NAME}),
        "contact": _object(
            {"phone_number": NAME, "first_name": NAME, "last_name": NAME, "user_id": ID},
            ("phone_number",),
        ),
        "reply_to_message": _object({"message_id": ID}, ("message_id",)),
    },
    ("message_id", "chat", "date"),
)
UPDATE = _object(
    {"update_id": {"type": "integer", "minimum": 0}, "message": MESSAGE, "edited_message": MESSAGE},
    ("update_id",),
)

_validator = Draft202012Validator(UPDATE)
# The same schema compiled (Rust, ~100x faster): answers the common case, a valid payload, at
# the webhook door and in the worker; jsonschema names the problem of an invalid one.
_fast = jsonschema_rs.Draft202012Validator(UPDATE)


def shape_error(payload) -> str | None:
    """What is wrong with the update's shape, or None when parse.py can read it."""
    if _fast.is_valid(payload):
        return None
    error = best_match(_validator.iter_errors(payload))
    if error is None:
        return None
    return f"{json_path(error.absolute_path)}: {error.message}"
