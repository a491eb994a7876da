"""Typed property definitions: parse strings from files/env into values, validate, document.

Mirrors the idea of Kafka's ConfigDef so a schema is a list of one-line `Prop(...)` entries that
the broker config (and later the registry config) share, and the README table is generated from it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

INT_MAX = 2**31 - 1
LONG_MAX = 2**63 - 1
_RANGES = {"short": (-(2**15), 2**15 - 1), "int": (-(2**31), INT_MAX), "long": (-(2**63), LONG_MAX)}
TYPES = ("bool", "short", "int", "long", "double", "string", "list", "password")


class ConfigError(ValueError):
    """A configuration that cannot be used; the message names the property."""


class Password:
    """A secret config value: `str()`/`repr()` print `[hidden]` so it never reaches a log."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    @property
    def value(self) -> str:
        """The secret itself, for the code that needs it (never log it)."""
        return self._value

    def __repr__(self) -> str:
        return "[hidden]"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Password) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class Validator:
    """A check on a parsed value plus the text shown in the docs' "valid values" column."""

    check: Callable[[Any], str | None]  # returns an error text or None
    doc: str


def at_least(minimum: float) -> Validator:
    """Value must be >= minimum (Kafka's Range.atLeast)."""
    return Validator(lambda v: None if v >= minimum else f"must be at least {minimum}", f"[{minimum},...]")


def between(low: float, high: float) -> Validator:
    """Value must lie in [low, high] (Kafka's Range.between)."""
    return Validator(
        lambda v: None if low <= v <= high else f"must be between {low} and {high}", f"[{low},...,{high}]"
    )


def one_of(*choices: str, case_sensitive: bool = True) -> Validator:
    """A string value (or every element of a list value) must be one of `choices`."""
    folded = set(choices) if case_sensitive else {c.lower() for c in choices}

    def check(value: Any) -> str | None:
        items = value if isinstance(value, list) else [value]
        for item in items:
            if (item if case_sensitive else item.lower()) not in folded:
                return f"'{item}' is not one of {', '.join(choices)}"
        return None

    return Validator(check, "[" + ", ".join(choices) + "]")


def non_empty() -> Validator:
    """A string or list must not be empty."""
    return Validator(lambda v: None if len(v) else "must not be empty", "non-empty")


@dataclass(frozen=True)
class Prop:
    """One property: Kafka name, type, default (None = no value), validator, one-line doc.

    `per_listener` props may also be set for one listener as `listener.name.<listener>.<name>`."""

    name: str
    type: str
    default: Any
    doc: str
    validator: Validator | None = None
    aliases: tuple[str, ...] = ()
    per_listener: bool = False

    def __post_init__(self) -> None:
        if self.type not in TYPES:
            raise ValueError(f"{self.name}: unknown type {self.type}")

    def parse(self, raw: Any) -> Any:
        """Turn a string (or an already-typed value) into this property's type, then validate."""
        try:
            value = _convert(self.type, raw, self.default is None)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"Invalid value {_shown(self, raw)} for configuration {self.name}: {exc}") from None
        if value is not None and self.validator is not None:
            problem = self.validator.check(value.value if isinstance(value, Password) else value)
            if problem:
                raise ConfigError(f"Invalid value {_shown(self, raw)} for configuration {self.name}: {problem}")
        return value


def _shown(prop: Prop, raw: Any) -> str:
    return "[hidden]" if prop.type == "password" else repr(raw)


def _convert(kind: str, raw: Any, nullable: bool) -> Any:
    if raw is None:
        return None
    if not isinstance(raw, str):
        return _convert_typed(kind, raw)
    text = raw.strip()
    if text == "" and nullable and kind not in ("string", "password"):
        return None
    if kind == "bool":
        if text.lower() not in ("true", "false"):
            raise ValueError("expected true or false")
        return text.lower() == "true"
    if kind in _RANGES:
        try:
            number = int(text, 10)
        except ValueError:
            raise ValueError(f"expected a whole number ({kind})") from None
        return _in_range(kind, number)
    if kind == "double":
        number = float(text)
        if not math.isfinite(number):
            raise ValueError("expected a finite number")
        return number
    if kind == "list":
        return _split_list(text)
    if kind == "password":
        return Password(text)
    return text


def _convert_typed(kind: str, raw: Any) -> Any:
    """Accept already-typed values from code (e.g. overrides={'num.partitions': 3})."""
    if kind == "bool" and isinstance(raw, bool):
        return raw
    if kind in _RANGES and isinstance(raw, int) and not isinstance(raw, bool):
        return _in_range(kind, raw)
    if kind == "double" and isinstance(raw, int | float) and not isinstance(raw, bool):
        return float(raw)
    if kind == "list" and isinstance(raw, Sequence):
        return [str(item) for item in raw]
    if kind == "password" and isinstance(raw, Password):
        return raw
    raise TypeError(f"expected {kind}, got {type(raw).__name__}")


def _in_range(kind: str, number: int) -> int:
    low, high = _RANGES[kind]
    if not low <= number <= high:
        raise ValueError(f"out of range for {kind} [{low}, {high}]")
    return number


def _split_list(text: str) -> list[str]:
    if not text:
        return []
    items = [item.strip() for item in text.split(",")]
    if any(not item for item in items):
        raise ValueError("empty element in comma-separated list")
    return items


def format_value(value: Any) -> str:
    """A value as it would be written in a properties file (passwords stay hidden)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(value)
    return str(value)
