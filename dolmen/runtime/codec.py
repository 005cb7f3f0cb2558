"""The payload codec: msgpack with dataclass and pydantic support, never pickle.

Decoding never chooses a class from stored data. Structured values come back as plain
dicts and lists unless the caller passes the Python type it expects (taken from type hints),
so a tampered database cannot make dolmen instantiate arbitrary classes.
"""

from __future__ import annotations

import dataclasses
import enum
import threading
import types
import typing
import uuid
from typing import Any

import msgpack

from dolmen.runtime.errors import EncodingError

_BIGINT = 1  # msgpack ext code for integers outside the 64-bit range
_TUPLE = 2  # ext code keeping tuples distinct from lists, so replay compares exactly

try:
    import pydantic

    _BaseModel: type | None = pydantic.BaseModel
except ImportError:  # pydantic is optional
    _BaseModel = None


# Tuples nest through the ext hook: each level is a new msgpack unpack, whose context
# takes ~32 kB of C stack, outside msgpack's own depth limit. A crafted payload nesting a
# few hundred of them overflowed the stack and killed the process (a segfault, no error).
_MAX_TUPLE_DEPTH = 32
_depth = threading.local()


def _int_text(value: int) -> bytes:
    # int(), not str(value): an int-mixin enum's str() is "Name.MEMBER". Hex beyond the
    # decimal limit of int <-> str conversion (sys.get_int_max_str_digits()).
    number = int(value)
    if number.bit_length() > 12_000:
        return (("-" if number < 0 else "") + hex(abs(number))).encode()
    return str(number).encode()


def _default(value: Any) -> Any:
    if isinstance(value, int):
        return msgpack.ExtType(_BIGINT, _int_text(value))
    if isinstance(value, tuple):
        depth = getattr(_depth, "value", 0)
        if depth >= _MAX_TUPLE_DEPTH:  # it could be stored, but never read back
            raise ValueError(f"tuples nested deeper than {_MAX_TUPLE_DEPTH}")
        _depth.value = depth + 1
        try:
            return msgpack.ExtType(_TUPLE, _packb(list(value)))
        finally:
            _depth.value = depth
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if _BaseModel is not None and isinstance(value, _BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    raise TypeError(f"object of type {type(value).__qualname__} is not supported")


def _packb(value: Any) -> bytes:
    return msgpack.packb(value, default=_default, use_bin_type=True, strict_types=True)


def _ext_hook(code: int, data: bytes) -> Any:
    if code == _BIGINT:
        text = data.decode()
        return int(text, 16) if "x" in text else int(text)
    if code == _TUPLE:
        depth = getattr(_depth, "value", 0)
        if depth >= _MAX_TUPLE_DEPTH:
            raise EncodingError(f"stored payload nests tuples deeper than {_MAX_TUPLE_DEPTH}")
        _depth.value = depth + 1
        try:
            return tuple(decode(data))
        finally:
            _depth.value = depth
    raise EncodingError(f"stored payload has unknown extension type {code}")


def encode(value: Any, what: str = "value") -> bytes:
    """Encode ``value``; ``what`` names it in the error (e.g. "argument 2 of workflow 'x'")."""
    try:
        return _packb(value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise EncodingError(
            f"cannot encode {what}: {exc}. Supported: None, bool, int, float, str, bytes, "
            "list, tuple, dict, set, dataclasses, enums, UUIDs and pydantic models"
        ) from None


def decode(data: bytes, expected: Any = None) -> Any:
    """Decode ``data``; with ``expected`` (a type hint), rebuild dataclasses and models."""
    try:
        value = msgpack.unpackb(data, raw=False, ext_hook=_ext_hook, strict_map_key=False)
    except EncodingError:
        raise
    except Exception as exc:
        raise EncodingError(f"stored payload is not valid msgpack: {exc}") from None
    return convert(value, expected) if expected is not None else value


def convert(value: Any, hint: Any) -> Any:
    """Shape a decoded plain value into ``hint``; unknown hints leave it as it is."""
    if hint is None or hint is Any or value is None:
        return value
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        for option in typing.get_args(hint):
            if option is type(None):
                continue
            try:
                return convert(value, option)
            except (TypeError, ValueError):
                continue
        return value
    if origin in (list, set, frozenset) and isinstance(value, list | tuple):
        (item,) = typing.get_args(hint) or (None,)
        return origin(convert(v, item) for v in value)
    if origin is tuple and isinstance(value, list | tuple):
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(convert(v, args[0]) for v in value)
        return tuple(convert(v, a) for v, a in zip(value, args, strict=False))
    if origin is dict and isinstance(value, dict):
        key_hint, value_hint = typing.get_args(hint) or (None, None)
        return {convert(k, key_hint): convert(v, value_hint) for k, v in value.items()}
    if not isinstance(hint, type):
        return value
    if dataclasses.is_dataclass(hint) and isinstance(value, dict):
        field_hints = typing.get_type_hints(hint)
        return hint(**{k: convert(v, field_hints.get(k)) for k, v in value.items()})
    if _BaseModel is not None and issubclass(hint, _BaseModel):
        return hint.model_validate(value)
    if issubclass(hint, enum.Enum):
        return hint(value)
    if hint is uuid.UUID and isinstance(value, str):
        return uuid.UUID(value)
    if hint is tuple and isinstance(value, list):
        return tuple(value)
    return value
