"""The shape of what the mapper reads from Matrix events and appservice transactions.

The appservice endpoint refuses a transaction of another shape whole (400 M_BAD_JSON naming
the place) before anything is stored; the sync feeder skips such an event with a warning.
Fields the mapper does not read may be anything. Lengths follow the columns they end up in.
"""

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from integrations.whatsapp_cloud.schema import json_path

ID = {"type": "string", "maxLength": 255}
TEXT = {"type": "string"}
SIZE = {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}


def _object(properties: dict, **more) -> dict:
    return {"type": "object", "properties": properties, **more}


RELATES_TO = _object(
    {
        "rel_type": TEXT,
        "event_id": ID,
        "key": {"type": "string", "maxLength": 255},
        "m.in_reply_to": _object({"event_id": ID}),
    }
)
CONTENT = _object(
    {
        "msgtype": TEXT,
        "body": TEXT,
        "filename": TEXT,
        "url": {"type": "string", "maxLength": 500},
        "geo_uri": TEXT,
        "info": _object(
            {
                "mimetype": {"type": "string", "maxLength": 127},
                "w": SIZE,
                "h": SIZE,
                "duration": SIZE,
            }
        ),
        "membership": TEXT,
        "displayname": {"type": ["string", "null"]},
        "status": TEXT,
        "message": TEXT,
        "error": TEXT,
        "reason": TEXT,
        "redacts": ID,
        "m.new_content": _object({"body": TEXT}),
        "m.relates_to": RELATES_TO,
    }
)
EVENT = _object(
    {
        "type": TEXT,
        "room_id": ID,
        "sender": ID,
        "event_id": ID,
        "state_key": ID,
        "redacts": ID,
        "origin_server_ts": {"type": "integer", "minimum": 0},
        "content": CONTENT,
    }
)
EPHEMERAL = _object(
    {"type": TEXT, "room_id": ID, "content": {"type": "object"}},
    allOf=[
        {
            "if": {"properties": {"type": {"const": "m.receipt"}}},
            "then": {
                "properties": {
                    "content": {
                        "additionalProperties": {
                            "type": "object",
                            "additionalProperties": {"type": ["object", "null"]},
                        }
                    }
                }
            },
        },
        {
            "if": {"properties": {"type": {"const": "m.typing"}}},
            "then": {
                "properties": {"content": _object({"user_ids": {"type": "array", "items": ID}})}
            },
        },
    ],
)
TRANSACTION = _object(
    {
        "events": {"type": "array", "items": EVENT},
        "ephemeral": {"type": "array", "items": EPHEMERAL},
        "de.sorunome.msc2409.ephemeral": {"type": "array", "items": EPHEMERAL},
    }
)

_transaction = Draft202012Validator(TRANSACTION)
_event = Draft202012Validator(EVENT)


def _first_error(validator, value) -> str | None:
    error = best_match(validator.iter_errors(value))
    if error is None:
        return None
    return f"{json_path(error.absolute_path)}: {error.message}"


def transaction_shape_error(body) -> str | None:
    return _first_error(_transaction, body)


def event_shape_error(event) -> str | None:
    return _first_error(_event, event)
