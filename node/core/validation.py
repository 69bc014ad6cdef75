"""Every limit of the data model and every message that reports a broken one.

Messages follow Workers KV's wording, with the configured minimum TTL where it
appears. Nothing else in Rumor words a validation error: the gRPC service and
the HTTP gateway both call these functions, and raise what they raise.
Each function either returns the normalised input or raises InvalidRequest
(or a subclass that tells the HTTP gateway to answer 413 or 414). The limits of a
list page (its size, its cursor, the HTTP namespace list's page) are ``paging``'s.

Time is whole seconds, ``now = floor(wall clock)``, as Miniflare counts it:
``expiration = floor(now) + 60`` is accepted and a TTL gives ``floor(now) + ttl``.
Expirations, TTLs and cache TTLs must fit the Workers binding's 32-bit integers
(below 2**31); every bad value is refused here, before anything is written.
"""

from __future__ import annotations

import json
import math
import re
import urllib.parse
from collections.abc import Sequence
from typing import Any

from rumor.node.core.errors import InvalidRequest, KeyTooLong, ValueTooLarge

MAX_KEY_BYTES = 512
MAX_VALUE_BYTES = 26_214_400  # 25 MiB
MAX_METADATA_BYTES = 1024
MAX_BULK_WRITE_PAIRS = 10_000
MAX_BULK_WRITE_BYTES = 100_000_000  # 100 MB: keys, values and metadata together
MAX_BULK_DELETE_KEYS = 10_000
MAX_BULK_GET_KEYS = 100
MAX_BULK_GET_BYTES = 26_214_400  # 25 MiB: every value of one bulk get together
MIN_CACHE_TTL = 30
MAX_SECONDS = 2**31  # exclusive: the Workers binding passes these as 32-bit integers
MAX_TITLE_BYTES = 512
DEFAULT_MIN_EXPIRATION_TTL = 60
_INTEGER_TEXT = re.compile(r"[+-]?[0-9]{1,30}")  # ASCII digits only; longer is refused


def key(raw: bytes) -> bytes:
    """A key: UTF-8, 1..512 bytes, not "." or ".."."""
    if not raw:
        raise InvalidRequest("Key name cannot be empty.")
    if raw in (b".", b".."):
        raise InvalidRequest(f'"{raw.decode()}" is not allowed as a key name.')
    if len(raw) > MAX_KEY_BYTES:
        raise KeyTooLong(
            f"UTF-8 encoded length of {len(raw)} exceeds key length limit of {MAX_KEY_BYTES}."
        )
    _utf8(raw, "Key name must be valid UTF-8.")
    return raw


def all_keys_and_values_valid(keys: Sequence[bytes], values: Sequence[bytes]) -> bool:
    """Whether every key passes ``key`` and every value ``value_length`` (checked for
    all of them at once, in C; call ``key`` and ``value_length`` on each for the error)."""
    if not keys:
        return True
    if min(map(len, keys)) == 0 or max(map(len, keys)) > MAX_KEY_BYTES:
        return False
    if b"." in keys or b".." in keys or max(map(len, values)) > MAX_VALUE_BYTES:
        return False
    # An ASCII separator: a sequence cut short at a key's end, or a continuation byte
    # at a key's start, breaks the joined text as it breaks the key alone.
    joined = b"\n".join(keys)
    if joined.isascii():
        return True
    try:
        joined.decode()
    except UnicodeDecodeError:
        return False
    return True


def prefix(raw: bytes) -> bytes:
    """A list prefix: literal, case-sensitive, UTF-8, at most 512 bytes (empty allowed)."""
    if len(raw) > MAX_KEY_BYTES:
        raise KeyTooLong(
            f"UTF-8 encoded length of {len(raw)} exceeds key length limit of {MAX_KEY_BYTES}."
        )
    _utf8(raw, "Prefix must be valid UTF-8.")
    return raw


def query_bytes(raw_query: str, name: str) -> bytes:
    """Query parameter ``name`` (its first occurrence) as the bytes it encodes, b"" when
    absent: percent-escapes decoded to bytes, not through UTF-8 with replacement, so a
    prefix of ``%FF`` is refused as invalid UTF-8 (as on gRPC), not listed as U+FFFD."""
    for part in raw_query.split("&"):
        key, _, value = part.partition("=")
        if urllib.parse.unquote_plus(key) == name:
            return urllib.parse.unquote_to_bytes(value.replace("+", " "))
    return b""


def value_length(length: int) -> int:
    if length > MAX_VALUE_BYTES:
        raise ValueTooLarge(f"Value length of {length} exceeds limit of {MAX_VALUE_BYTES}.")
    return length


def metadata(raw: bytes | None) -> bytes | None:
    """Metadata given as JSON text, returned as compact JSON; None when absent."""
    if raw is None:
        return None
    try:
        parsed = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidRequest("Metadata must be valid JSON.") from exc
    return metadata_value(parsed)


def metadata_value(parsed: Any) -> bytes:
    """Metadata given as a parsed JSON value, returned as compact JSON."""
    try:
        compact = json.dumps(
            parsed, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode()
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidRequest("Metadata must be valid JSON.") from exc
    if len(compact) > MAX_METADATA_BYTES:
        raise ValueTooLarge(
            f"Metadata length of {len(compact)} exceeds limit of {MAX_METADATA_BYTES}."
        )
    return compact


def expiration(
    absolute: int | None,
    ttl: int | None,
    *,
    now_s: float,
    min_ttl: int = DEFAULT_MIN_EXPIRATION_TTL,
) -> int:
    """The absolute expiration of a client write (0: never). The TTL wins over ``absolute``.

    The accepting node turns a TTL into an absolute time; only that travels.
    ``now`` is whole seconds (the wall clock rounded down), as in Miniflare.
    """
    now = math.floor(now_s)
    if ttl is not None:
        if ttl <= 0:
            raise InvalidRequest(
                f"Invalid expiration_ttl of {ttl}. Please specify integer greater than 0."
            )
        if ttl < min_ttl:
            raise InvalidRequest(
                f"Invalid expiration_ttl of {ttl}. Expiration TTL must be at least {min_ttl}."
            )
        if ttl >= MAX_SECONDS:
            raise InvalidRequest(
                f"Invalid expiration_ttl of {ttl}. Expiration TTL must be less than {MAX_SECONDS}."
            )
        if now + ttl >= MAX_SECONDS:
            # The expiration it gives must obey the bound an absolute one does.
            raise InvalidRequest(
                f"Invalid expiration_ttl of {ttl}. The expiration it gives ({now + ttl}) must"
                f" be less than {MAX_SECONDS} seconds since the UNIX epoch."
            )
        return now + ttl
    if absolute is not None:
        if absolute <= now:
            raise InvalidRequest(
                f"Invalid expiration of {absolute}. Please specify integer greater than"
                " the current number of seconds since the UNIX epoch."
            )
        if absolute < now + min_ttl:
            raise InvalidRequest(
                f"Invalid expiration of {absolute}. Expiration times must be at least"
                f" {min_ttl} seconds in the future."
            )
        if absolute >= MAX_SECONDS:
            raise InvalidRequest(
                f"Invalid expiration of {absolute}. Expiration times must be less than"
                f" {MAX_SECONDS} seconds since the UNIX epoch."
            )
        return absolute
    return 0


def integer(raw: object, name: str) -> int:
    """A whole number given as a JSON number or as text (query strings, workerd's cacheTtl).

    Text must be written as an integer (``60``, not ``60.0`` or ``6e1``) and is read
    exactly, never through a float (``9223372036854775807`` stays itself)."""
    if isinstance(raw, bool):
        raise InvalidRequest(f"Invalid {name} of {raw!r}. Please specify an integer.")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str):
        text = raw.strip()
        if _INTEGER_TEXT.fullmatch(text):
            return int(text)
        raise InvalidRequest(f"Invalid {name} of {raw}. Please specify an integer.")
    number = raw if isinstance(raw, float) else math.nan
    if not number.is_integer():
        shown = raw if isinstance(raw, str) else repr(raw)
        raise InvalidRequest(f"Invalid {name} of {shown}. Please specify an integer.")
    return int(number)


_PARSE_INT = re.compile(r"\s*([+-]?)(?:0[xX]([0-9a-fA-F]*)|(\d+))")


def parse_int(raw: str) -> int | None:
    """JavaScript's ``parseInt(raw)``: the integer its leading digits spell (``"61.9"``
    is 61, ``"1e3"`` is 1, ``"0x10"`` is 16), None where JavaScript gets NaN."""
    match = _PARSE_INT.match(raw)
    if match is None:
        return None
    sign, hex_digits, digits = match.groups()
    if hex_digits == "":
        return None  # "0x" with no digits
    number = int(digits) if hex_digits is None else int(hex_digits, 16)
    return -number if sign == "-" else number


def query_seconds(raw: str | None, name: str) -> int | None:
    """An ``expiration`` or ``expiration_ttl`` query parameter, read as Workers KV reads
    it (``parseInt``); text with no leading digits is refused in its words."""
    if raw is None or raw == "":
        return None
    number = parse_int(raw)
    if number is None:
        if name == "expiration_ttl":
            raise InvalidRequest(
                f"Invalid expiration_ttl of {raw}. Please specify integer greater than 0."
            )
        raise InvalidRequest(
            f"Invalid {name} of {raw}. Please specify integer greater than the current"
            " number of seconds since the UNIX epoch."
        )
    return number


def cache_ttl(raw: object) -> int | None:
    """A read's ``cacheTtl``: accepted, checked, then ignored (every read is local).

    workerd sends it as text in a bulk get (``"60"``), so numeric strings count.
    """
    if raw is None:
        return None
    try:
        ttl = integer(raw, "cache_ttl")
    except InvalidRequest:
        ttl = None
    if ttl is None or ttl < MIN_CACHE_TTL:
        shown = raw if ttl is None else ttl
        raise InvalidRequest(
            f"Invalid cache_ttl of {shown}. Cache TTL must be at least {MIN_CACHE_TTL}."
        )
    if ttl >= MAX_SECONDS:
        raise InvalidRequest(
            f"Invalid cache_ttl of {ttl}. Cache TTL must be less than {MAX_SECONDS}."
        )
    return ttl


def bulk_write_size(pairs: int, total_bytes: int) -> None:
    if pairs > MAX_BULK_WRITE_PAIRS:
        raise InvalidRequest(
            f"Bulk write of {pairs} pairs exceeds limit of {MAX_BULK_WRITE_PAIRS}."
        )
    if total_bytes > MAX_BULK_WRITE_BYTES:
        raise ValueTooLarge(
            f"Bulk write of {total_bytes} bytes exceeds limit of {MAX_BULK_WRITE_BYTES}."
        )


def bulk_delete_size(keys: int) -> None:
    if keys > MAX_BULK_DELETE_KEYS:
        raise InvalidRequest(f"Bulk delete of {keys} keys exceeds limit of {MAX_BULK_DELETE_KEYS}.")


def bulk_get_size(keys: int) -> None:
    if keys > MAX_BULK_GET_KEYS:
        raise InvalidRequest(f"You can request a maximum of {MAX_BULK_GET_KEYS} keys")
    if keys < 1:
        raise InvalidRequest("You must request a minimum of 1 key")


def bulk_get_type(value_type: str) -> str:
    if value_type not in ("text", "json"):
        raise InvalidRequest(f'"{value_type}" is not a valid type. Use "json" or "text"')
    return value_type


def bulk_get_total(total_bytes: int) -> None:
    """The values of one bulk get together: at most 25 MiB."""
    if total_bytes > MAX_BULK_GET_BYTES:
        raise ValueTooLarge(
            f"Total size of request exceeds the limit of {MAX_BULK_GET_BYTES // 1024 // 1024}MB"
        )


def bulk_json_value(value: bytes) -> str:
    """A value of a bulk get read as JSON (Miniflare's message: it names no key)."""
    text = value.decode("utf-8", "replace")
    try:
        json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise InvalidRequest(
            "At least one of the requested keys corresponds to a non-json value"
        ) from exc
    return text


def title(raw: str) -> str:
    """A namespace title: non-empty, at most 512 bytes of UTF-8."""
    if not raw.strip():
        raise InvalidRequest("Namespace title cannot be empty.")
    length = len(raw.encode())
    if length > MAX_TITLE_BYTES:
        raise InvalidRequest(
            f"Namespace title length of {length} exceeds limit of {MAX_TITLE_BYTES}."
        )
    return raw


def json_value(key_name: bytes, value: bytes) -> str:
    """A stored value read as JSON: its text, checked to parse."""
    text = value.decode("utf-8", "replace")
    try:
        json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        name = key_name.decode("utf-8", "replace")
        raise InvalidRequest(f'The value of key "{name}" is not valid JSON.') from exc
    return text


# A \uD800-\uDFFF escape: the only way a JSON text can hold a lone surrogate.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def json_body(raw: bytes) -> Any:
    """A request body parsed as JSON; InvalidRequest if it is not JSON a key or value can hold.

    JSON allows ``"\\ud800"`` (a lone surrogate), which no UTF-8 text can hold:
    such a body is refused here rather than failing later when encoded.
    """
    try:
        parsed = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidRequest("The request body must be valid JSON.") from exc
    if _SURROGATE_ESCAPE.search(raw) and _holds_lone_surrogate(parsed):
        raise InvalidRequest(
            "The request body must be valid JSON text: it holds a lone UTF-16 surrogate"
            " (\\ud800-\\udfff not in a pair)."
        )
    return parsed


def _holds_lone_surrogate(parsed: Any) -> bool:
    pending = [parsed]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            try:
                item.encode()
            except UnicodeEncodeError:
                return True
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
    return False


def _utf8(raw: bytes, message: str) -> None:
    try:
        raw.decode()
    except UnicodeDecodeError as exc:
        raise InvalidRequest(message) from exc


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
