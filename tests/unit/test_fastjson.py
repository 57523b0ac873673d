"""notifier.fastjson: orjson where it encodes as json.dumps does, json.dumps everywhere else."""
import datetime
import decimal
import enum
import json
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rest_framework.renderers import JSONRenderer as DRFJSONRenderer

from apps.api.renderers import JSONRenderer
from notifier import fastjson

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2**63, max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(st.characters(blacklist_categories=("Cs",))),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_dumps_reads_back_as_what_json_dumps_gives(value):
    assert json.loads(fastjson.dumps(value)) == json.loads(json.dumps(value))


def test_dumps_is_compact_utf8_like_a_jsonb_value():
    assert fastjson.dumps({"subject": "Olá", "data": {"n": [1, 2.5, None, True]}}) == \
        '{"subject":"Olá","data":{"n":[1,2.5,null,true]}}'.encode()
    assert fastjson.dumps_str({"a": "b"}) == '{"a":"b"}'


class Colour(str, enum.Enum):
    RED = "red"


def test_what_orjson_would_encode_otherwise_goes_to_json_dumps():
    # Integer keys and integers past 64 bits: orjson refuses them, json.dumps encodes them.
    assert json.loads(fastjson.dumps({1: "a", "big": 2**70})) == {"1": "a", "big": 2**70}
    # A str subclass is encoded as json.dumps encodes it (its value).
    assert json.loads(fastjson.dumps({"c": Colour.RED})) == {"c": "red"}


@pytest.mark.parametrize("value", [datetime.datetime(2026, 1, 1), decimal.Decimal("1.5"), object()])
def test_what_json_dumps_refuses_is_still_refused(value):
    with pytest.raises(TypeError):
        fastjson.dumps({"v": value})


@given(json_values)
def test_the_api_renderer_gives_what_drfs_renderer_gives(value):
    data = {"results": [value]}
    assert json.loads(JSONRenderer().render(data)) == json.loads(DRFJSONRenderer().render(data))


def test_the_api_renderer_encodes_drfs_types_as_drf_does():
    data = {
        "id": uuid.UUID("0193a5b2-1234-7abc-8def-0123456789ab"),
        "at": datetime.datetime(2026, 12, 4, 15, 0, tzinfo=datetime.timezone.utc),
        "amount": decimal.Decimal("1.50"), "tags": {"x"}, "line": "a\u2028b\u2029c", 1: "int key",
    }
    for item in (data, {k: v for k, v in data.items() if k != 1}):
        assert JSONRenderer().render(item) == DRFJSONRenderer().render(item)


def test_the_api_renderer_indents_when_asked_as_drf_does():
    data = {"a": [1, 2]}
    assert JSONRenderer().render(data, "application/json; indent=2") == \
        DRFJSONRenderer().render(data, "application/json; indent=2")
    assert JSONRenderer().render(None) == b""
