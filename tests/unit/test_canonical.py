"""Canonical JSON (RFC 8785) and the strict JSON parser."""
import json
from pathlib import Path

import pytest

from assay.core.canonical import canonical_json, parse_json_strict
from assay.core.errors import FormatError

VECTORS = Path(__file__).resolve().parents[1] / "vectors"


def test_fixed_vector():
    v = json.loads((VECTORS / "canonical.json").read_text(encoding="utf-8"))
    assert canonical_json(json.loads(v["input"])).hex() == v["canonical_utf8_hex"]
    # and the strict parser reads the canonical form back to the same canonical bytes
    assert canonical_json(parse_json_strict(bytes.fromhex(v["canonical_utf8_hex"]))).hex() == v["canonical_utf8_hex"]


def test_rfc8785_section_3_2_2_example():
    data = json.loads(r'''{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
        "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/", "literals": [null, true, false]}''')
    expected = '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    assert canonical_json(data) == expected.encode("utf-8")


@pytest.mark.parametrize("value, expected", [
    (1e21, b"1e+21"), (0.1, b"0.1"), (-0.0, b"0"), (1.0, b"1"), (1e-7, b"1e-7"), (123456789012345680000.0, b"123456789012345680000"),
    ({"b": 1, "a": [True, None]}, b'{"a":[true,null],"b":1}'), ("\u2028", '"\u2028"'.encode()),
])
def test_numbers_and_ordering(value, expected):
    assert canonical_json(value) == expected


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 2**60, {1: "non-string key"}, b"bytes"])
def test_canonical_rejects_unrepresentable(value):
    with pytest.raises(FormatError):
        canonical_json(value)


@pytest.mark.parametrize("data, fragment", [
    (b'{"a":1,"a":2}', "duplicate key 'a'"),
    (b'{"x":{"a":1,"a":1}}', "duplicate key"),
    (b"[NaN]", "NaN"), (b"[Infinity]", "Infinity"), (b"[-Infinity]", "Infinity"),
    (b'"\xff"', "not UTF-8"), ("[1]".encode("utf-16"), "not UTF-8"), (b"\xef\xbb\xbf[1]", "byte order mark"),
    (b'["\\ud800"]', "surrogate"), (b"[1] [2]", "Extra data"), (b"", "invalid JSON"), (b"{'a':1}", "invalid JSON"),
    (b"[" * 100 + b"]" * 100, "nested"),
])
def test_parse_strict_rejects(data, fragment):
    with pytest.raises(FormatError, match="invalid JSON") as exc:
        parse_json_strict(data)
    assert fragment in str(exc.value)
    assert "\n" not in str(exc.value)


def test_parse_strict_rejects_non_bytes():
    with pytest.raises(FormatError):
        parse_json_strict('{"a": 1}')


def test_parse_strict_accepts_plain_json():
    assert parse_json_strict(b'{"a": [1, 2.5, "\\u00e9", null]}') == {"a": [1, 2.5, "é", None]}
