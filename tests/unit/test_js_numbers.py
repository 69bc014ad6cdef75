"""Numbers read as the Workers runtime and Miniflare read them (no I/O).

- ``validation.parse_int`` is JavaScript's ``parseInt``: the leading integer of the
  text after blanks and a sign, ``0x`` hex included; None where JavaScript gets NaN;
- ``codec.js_int`` is workerd's conversion to a 32-bit ``int`` option: NaN and
  infinities are 0, fractions are cut toward zero, beyond 32 bits is a TypeError.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rumor.client.codec import INT32_MAX, INT32_MIN, js_int, list_request
from rumor.node.core.validation import parse_int


@given(st.integers(), st.text(alphabet="abc.eE xyz-+", max_size=8))
def test_parse_int_reads_the_leading_integer(number: int, rest: str) -> None:
    if rest[:1].isdigit():
        return
    if number == 0 and rest.startswith(("x", "X")):
        return  # a hex prefix: "0xa" is 10, and "0x" alone NaN (test_parse_int_nan)
    assert parse_int(f"  {number}{rest}") == number


@pytest.mark.parametrize(
    ("text", "number"),
    [("61.9", 61), ("1e3", 1), ("0x10", 16), ("-0X1f", -31), ("+7", 7), ("\t 8", 8)],
)
def test_parse_int_examples(text: str, number: int) -> None:
    assert parse_int(text) == number


@pytest.mark.parametrize("text", ["", "abc", "-", "+", ".5", "x1", "0x"])
def test_parse_int_nan(text: str) -> None:
    assert parse_int(text) is None


@given(st.floats(allow_nan=False, allow_infinity=False, min_value=INT32_MIN, max_value=INT32_MAX))
def test_js_int_cuts_toward_zero(number: float) -> None:
    assert js_int(number) == math.trunc(number)


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf])
def test_js_int_non_finite_is_zero(number: float) -> None:
    assert js_int(number) == 0


@pytest.mark.parametrize("number", [INT32_MAX + 1, INT32_MIN - 1, 2.0**53, -(2.0**40)])
def test_js_int_beyond_32_bits(number: float) -> None:
    with pytest.raises(TypeError, match=r"^Value out of range\. Must be between"):
        js_int(number)


def test_js_int_takes_numbers_only() -> None:
    assert js_int(True) == 1
    with pytest.raises(TypeError):
        js_int("61")


@pytest.mark.parametrize("limit", [0, -5, 0.9, math.nan])
def test_a_list_limit_of_zero_or_less_is_not_sent(limit: float) -> None:
    assert not list_request("n", None, limit, None).HasField("limit")
    assert list_request("n", None, 7.5, None).limit == 7
