"""The shape of a Cloud API webhook delivery, as far as `parse.py` reads it (JSON Schema).

Checked before anything is parsed or stored, so a delivery of an unexpected shape is refused
whole with a 400 naming the place (`entry[0].changes[0].value.messages[0].text: 'hi' is not of
type 'object'`) instead of crashing half-way. Fields we do not read may be anything.
Lengths follow the columns the values end up in (ids 255, a phone 32 with its "+").
"""

import jsonschema_rs
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

ID = {"type": "string", "minLength": 1, "maxLength": 255}
NUMERIC_ID = {"type": ["string", "integer"], "minLength": 1, "maxLength": 255}
TEXT = {"type": "string", "maxLength": 20000}
NAME = {"type": "string", "maxLength": 255}


def _object(properties: dict, required: tuple[str, ...] = ()) -> dict:
    return {"type": "object", "properties": properties, "required": list(required)}


def _list(items: dict) -> dict:
    return {"type": "array", "items": items}


MEDIA = _object({"id": NUMERIC_ID, "caption": TEXT, "mime_type": NAME, "filename": NAME}, ("id",))
MEDIA_KINDS = ("image", "video", "audio", "document", "sticker")
MESSAGE = _object(
    {
        # A phone number in digits: stored as "+<digits>" in a 32-character column.
        "from": {"type": ["string", "integer"], "minLength": 1, "maxLength": 31, "minimum": 1},
        "id": ID,
        "type": NAME,
        "timestamp": {"type": ["string", "integer"], "maxLength": 20},
        "text": _object({"body": TEXT}),
        "image": MEDIA,
        "video": MEDIA,
        "audio": MEDIA,
        "document": MEDIA,
        "sticker": MEDIA,
        "location": _object(
            {
                "latitude": {"type": ["number", "string"], "maxLength": 40},
                "longitude": {"type": ["number", "string"], "maxLength": 40},
                "name": NAME,
                "address": NAME,
            }
        ),
        "button": _object({"text": TEXT, "payload": TEXT}),
        "interactive": _object(
            {
                "type": NAME,
                "button_reply": _object({"id": TEXT, "title": TEXT}),
                "list_reply": _object({"id": TEXT, "title": TEXT, "description": TEXT}),
            }
        ),
        "reaction": _object({"message_id": ID, "emoji": NAME}),
        "contacts": _list(
            _object(
                {
                    "name": _object({"formatted_name": NAME}),
                    "phones": _list(_object({"phone": NAME, "wa_id": NAME})),
                }
            )
        ),
        "context": _object({"id": ID}),
    },
    ("from", "id"),
) | {
    # A media message carries its media object (parse.py needs its id).
    "allOf": [
        {
            "if": {"properties": {"type": {"const": kind}}, "required": ["type"]},
            "then": {"required": [kind]},
        }
        for kind in MEDIA_KINDS
    ]
}
STATUS = _object(
    {
        "id": ID,
        "status": NAME,
        "errors": _list(
            _object(
                {
                    "code": {"type": ["integer", "string"], "maxLength": 40},
                    "title": TEXT,
                    "message": TEXT,
                    "error_data": _object({"details": TEXT}),
                }
            )
        ),
    }
)
VALUE = _object(
    {
        "metadata": _object({"phone_number_id": NUMERIC_ID}),
        "contacts": _list(
            _object({"wa_id": {"type": ["string", "integer"]}, "profile": _object({"name": NAME})})
        ),
        "messages": _list(MESSAGE),
        "statuses": _list(STATUS),
    }
)
WEBHOOK = _object(
    {
        "entry": _list(
            _object({"changes": _list(_object({"value": VALUE}, ("value",)))}, ("changes",))
        )
    },
    ("entry",),
)

_validator = Draft202012Validator(WEBHOOK)
# The same schema compiled (Rust, ~100x faster): answers the common case, a valid payload, at
# the webhook door and in the worker; jsonschema names the problem of an invalid one.
_fast = jsonschema_rs.Draft202012Validator(WEBHOOK)


def shape_error(payload) -> str | None:
    """What is wrong with the payload's shape, or None when parse.py can read it (the door
    checks only this; tests/whatsapp_cloud/test_fuzz.py holds parse.py to it)."""
    if _fast.is_valid(payload):
        return None
    error = best_match(_validator.iter_errors(payload))
    if error is None:
        return None
    return f"{json_path(error.absolute_path)}: {error.message}"


def json_path(path) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text.lstrip(".") or "the body"
