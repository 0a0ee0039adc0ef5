"""Hypothesis strategies for parser fuzzing: a real payload, bent out of shape.

`bent(payload)` keeps the documented structure most of the time and, at any place, may drop
keys or put an arbitrary JSON value (null, booleans, huge numbers, text with odd characters,
lists, objects) where an object, a string or a list belongs.
"""

import copy

from hypothesis import strategies as st

from communications.models import (
    Attachment,
    Contact,
    ContactIdentity,
    Conversation,
    Message,
    RealtimeEvent,
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=6,
)


def _paths(value, prefix=()):
    yield prefix
    children = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, child in children:
        yield from _paths(child, (*prefix, key))


@st.composite
def bent(draw, payload):
    """The payload with one to three places (any depth) replaced by an arbitrary JSON value or
    removed; everything else stays as documented, so the parser is reached deep inside."""
    value = copy.deepcopy(payload)
    places = list(_paths(payload))
    for path in draw(st.lists(st.sampled_from(places), min_size=1, max_size=3)):
        if not path:
            return draw(json_values)
        parent = value
        try:
            for key in path[:-1]:
                parent = parent[key]
            parent[path[-1]]
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change removed or replaced this place
        if isinstance(parent, dict) and draw(st.booleans()):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(json_values)
    return value


STORED = (Message, Conversation, Contact, ContactIdentity, Attachment, RealtimeEvent)


def stored_counts() -> tuple[int, ...]:
    return tuple(model.objects.count() for model in STORED)
