"""Frozen-dataclass configs: building them from dicts (JSON, CLI overrides) with unknown keys as errors."""
from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, TypeVar

from .errors import DigitsError

T = TypeVar("T")


def from_dict(cls: type[T], data: dict[str, Any], where: str = "config") -> T:
    """Build dataclass `cls` from `data`; unknown keys and wrong types are errors, lists become tuples."""
    if not isinstance(data, dict):
        raise DigitsError(f"{where}: expected an object, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise DigitsError(f"{where}: unknown key(s) {', '.join(unknown)} for {cls.__name__}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in data.items():
        kwargs[key] = coerce(value, hints[key], f"{where}.{key}")
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise DigitsError(f"{where}: {e}") from None


def shown(value: Any, limit: int = 60) -> str:
    """A value for an error message: its repr, cut short (an int of thousands of digits has none)."""
    try:
        text = repr(value)
    except ValueError:
        text = f"<{type(value).__name__} too large to show>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def coerce(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType) and type(None) in typing.get_args(hint):  # X | None
        if value is None:
            return None
        (hint,) = set(typing.get_args(hint)) - {type(None)}
        origin = typing.get_origin(hint)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise DigitsError(f"{where}: expected a list, got {shown(value)}")
        (item,) = set(typing.get_args(hint)) - {Ellipsis}
        return tuple(coerce(v, item, where) for v in value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float, str, bool) and not (type(value) is hint):
        raise DigitsError(f"{where}: expected {hint.__name__}, got {shown(value)}")
    return value


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)
