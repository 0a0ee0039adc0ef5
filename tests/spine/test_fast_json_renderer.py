"""crm/renderers.py: the API's orjson renderer answers what DRF's JSONRenderer answers."""

import datetime
import decimal
import json
import uuid

import pytest
from django.utils.translation import gettext_lazy
from hypothesis import example, given, settings
from hypothesis import strategies as st
from rest_framework.renderers import JSONRenderer

from crm.renderers import FastJSONRenderer

pytestmark = pytest.mark.django_db

plain = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from('\u2028\u2029"\\<>&')),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(plain)
@example(["line\u2028separator\u2029", {"key\u2028": "<\u2029>"}])
def test_same_bytes_as_drf_for_everything_but_floats(data):
    assert FastJSONRenderer().render(data) == JSONRenderer().render(data)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), max_size=5))
def test_floats_are_the_same_numbers(data):
    # orjson writes 1e-07 as 1e-7: another spelling of the same number.
    assert json.loads(FastJSONRenderer().render(data)) == json.loads(JSONRenderer().render(data))


def test_drf_types_and_integer_keys_as_drf_writes_them():
    data = {
        "at": datetime.datetime(2026, 12, 5, 10, 0, 0, 123456, tzinfo=datetime.UTC),
        "naive": datetime.datetime(2026, 12, 5, 10, 0),
        "day": datetime.date(2026, 12, 5),
        "time": datetime.time(9, 30),
        "amount": decimal.Decimal("12.50"),
        "id": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "lazy": gettext_lazy("not found"),
        "tuple": (1, 2),
        3: "integer key",
    }
    fast = FastJSONRenderer().render(data)
    assert fast == JSONRenderer().render(data)
    assert b'"at":"2026-12-05T10:00:00.123456Z"' in fast


def test_unknown_types_still_refused_and_indent_still_honoured():
    with pytest.raises(TypeError):
        FastJSONRenderer().render({"x": object()})
    indented = FastJSONRenderer().render({"a": [1]}, "application/json; indent=2")
    assert indented == JSONRenderer().render({"a": [1]}, "application/json; indent=2")
    assert FastJSONRenderer().render(None) == b""


def test_the_api_answers_through_it(client, django_user_model):
    user = django_user_model.objects.create_user("renderer-user", password="x")
    client.force_login(user)
    response = client.get("/api/v1/conversations/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    assert isinstance(response.accepted_renderer, FastJSONRenderer)
    assert response.json() == {"results": [], "next_cursor": None}
