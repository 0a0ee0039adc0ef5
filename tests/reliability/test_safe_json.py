"""`load_json` answers from the raw text when it plainly cannot refuse it, and walks the value
otherwise: both ways must give the same verdict for every body, whatever its escapes,
encoding, nesting or unstorable characters."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crm.safe_json import MAX_DEPTH, JSONRejected, check_json, load_json

TEXT = st.text(
    alphabet=st.one_of(
        st.characters(codec="utf-8"),
        st.sampled_from(["\x00", "\ud800", "\udfff", "\\", '"', "u", "{", "[", "한", "é"]),
    ),
    max_size=12,
)
VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), TEXT),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(TEXT, inner, max_size=3)),
    max_leaves=40,
)


def nested(depth: int):
    value = "leaf"
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


def walk_refuses(value) -> bool:
    try:
        check_json(value)
    except JSONRejected:
        return True
    return False


def load_refuses(body) -> bool:
    try:
        load_json(body)
    except JSONRejected:
        return True
    return False


def bodies(value, ascii_only: bool):
    text = json.dumps(value, ensure_ascii=ascii_only)
    yield text
    yield text.encode("utf-8", "surrogatepass")
    yield text.encode("utf-16")


@settings(max_examples=400, deadline=None)
@given(value=st.one_of(VALUES, st.integers(0, MAX_DEPTH + 3).map(nested)), ascii_only=st.booleans())
def test_the_raw_text_shortcut_gives_the_walk_s_verdict(value, ascii_only):
    expected = walk_refuses(value)
    for body in bodies(value, ascii_only):
        assert load_refuses(body) == expected, body


@pytest.mark.parametrize(
    "body",
    [
        b'{"a": "\\u0000"}',  # an escaped NUL
        b'{"a": "\\ud800"}',  # an escaped lone surrogate
        '{"a": "\ud800"}'.encode("utf-8", "surrogatepass"),  # a raw one, in UTF-8
        '{"a": "\x00"}',  # a raw NUL in a str body
        ("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)).encode(),
    ],
)
def test_unstorable_or_too_deep_bodies_are_refused(body):
    assert load_refuses(body)


def test_brackets_inside_strings_only_cost_the_walk():
    body = json.dumps({"text": "[{" * 40}).encode()
    assert load_json(body) == {"text": "[{" * 40}
