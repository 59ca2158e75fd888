"""Typed reading of TOML values, shared by every settings section: each value is checked
against its dataclass field's type and refused with file, line and key."""

from __future__ import annotations

import dataclasses
import os
import typing
from typing import Any, Literal, TypeVar, get_args, get_origin

from gateway._settings.model import Secret
from gateway._settings.toml import KeyPath, TomlDocument, check_keys

T = TypeVar("T")


def coerce(doc: TomlDocument, at: KeyPath, value: Any, hint: Any) -> Any:
    """``value`` checked against the field type ``hint`` (a ``Literal``, ``tuple[str, ...]``,
    a non-negative ``float`` or ``int``, ``bool``, ``str``).

    Raises:
        ConfigError: at ``at`` in ``doc``, saying what was expected.
    """
    origin = get_origin(hint)
    if origin is Literal:
        if value not in get_args(hint):
            allowed = ", ".join(repr(a) for a in get_args(hint))
            raise doc.error(at, f"must be one of {allowed}, not {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise doc.error(at, "must be a list of strings")
        return tuple(value)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise doc.error(at, f"must be a number, not {type(value).__name__}")
        if value < 0:
            raise doc.error(at, "must not be negative")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise doc.error(at, f"must be an integer, not {type(value).__name__}")
        if value < 0:
            raise doc.error(at, "must not be negative")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise doc.error(at, f"must be true or false, not {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise doc.error(at, f"must be a string, not {type(value).__name__}")
        return value
    raise TypeError(f"unsupported setting type {hint!r}")  # a bug in this module


def section_of(doc: TomlDocument, table: Any, at: KeyPath, cls: type[T]) -> T:
    """The frozen dataclass ``cls`` from a TOML table: unknown keys and wrong types refused
    (``ConfigError`` with file, line and key), missing keys left at their defaults."""
    if not isinstance(table, dict):
        raise doc.error(at, "must be a table")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    check_keys(doc, table, at, names)
    values = {key: coerce(doc, (*at, key), value, hints[key]) for key, value in table.items()}
    return cls(**values)


SECRET_KEYS = ("secret", "secret_env", "secret_file")


def secret_of(doc: TomlDocument, table: dict[str, Any], at: KeyPath,
              keys: tuple[str, str, str] = SECRET_KEYS) -> Secret:
    """The secret of a table giving one of its three ``keys`` (the value itself, the name of
    an environment variable, a file relative to the config), ``""`` if none; errors name the
    key as the file spells it (``secret_env``, ``password_env``)."""
    plain, env, file = keys
    given = [k for k in keys if table.get(k)]
    if len(given) > 1:
        raise doc.error((*at, given[1]), f"give only one of {', '.join(keys)} (found {given})")
    for key in keys:
        if key in table and not isinstance(table[key], str):
            raise doc.error((*at, key), "must be a string")
    value = ""
    if table.get(plain):
        value = table[plain]
    elif table.get(env):
        name = table[env]
        if name not in os.environ:
            raise doc.error((*at, env), f"environment variable {name!r} is not set")
        value = os.environ[name]
    elif table.get(file):
        secret_path = doc.path.parent / table[file]
        try:
            value = secret_path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise doc.error((*at, file), f"cannot read {secret_path}: {exc.strerror}") from exc
    return Secret(value)


__all__ = ["SECRET_KEYS", "coerce", "secret_of", "section_of"]
