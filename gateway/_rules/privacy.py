"""Phone numbers and addresses leave the event log: each is kept as the token of its salted key.

The event log keeps every event's decoded input (``raw``) so a recorded event can be replayed
against other rules (the sandbox). A buyer's phone number or address in it would sit on the
box's disk in clear, in the quarantine too. So before an event is recorded, every value at a
buyer-identity path of kind ``phone`` or ``address`` of the source's rules (``[fields]
buyer``) is replaced, in place, by the token of its key (``core_ext.key_token``:
``"#bk:"`` + 16 hex digits), salted with the install's secret (``gateway._pipeline.salt``).
The core reads a token back as the very key it spells, so a replayed event joins the same
buyer and pack group; nothing reads the number itself back.

What is not redacted: identities of the other kinds (``phone_hash``, ``device``,
``buyer_id`` are the platforms' pseudonyms), a value too short to be an identity (a masked
``****``), fields the rules do not name as a buyer path (a receiver name: map it to a data
field only if you need it), and literal paths. Paths with a numeric step into a list are
followed like the core follows them.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import core_ext

#: The identity kinds whose values never reach the event log in clear.
REDACTED_KINDS = frozenset({"phone", "address"})
#: The identity kinds an agent looks a buyer up by (``gateway._ops_lookup``): each one an
#: event names is indexed, not only the first (``alias_keys``).
SEARCHED_KINDS = frozenset({"phone", "buyer_id"})


@functools.lru_cache(maxsize=256)
def redacted_paths(buyer: tuple[tuple[str, str], ...]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """``(kind, steps)`` of the buyer paths to redact (``SourceSpec.buyer``), parsed once."""
    return tuple((kind, tuple(path.removesuffix("?").split("."))) for kind, path in buyer
                 if kind in REDACTED_KINDS and not path.startswith("="))


@functools.lru_cache(maxsize=256)
def alias_paths(buyer: tuple[tuple[str, str], ...]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """``(kind, (path,))`` of the searched kinds, when the rules name more than one identity
    (with one, the buyer key is the only key)."""
    if len(buyer) < 2:
        return ()
    return tuple((kind, (path,)) for kind, path in buyer if kind in SEARCHED_KINDS and not path.startswith("="))


def alias_keys(raw: Any, tenant: str, paths: Sequence[tuple[str, tuple[str, ...]]], buyer: int) -> tuple[int, ...]:
    """The keys of ``raw``'s searched identities other than ``buyer`` (read after redaction:
    a token reads as its own key)."""
    keys: list[int] = []
    for kind, path in paths:
        key = core_ext.buyer_key(tenant, kind, core_ext.extract(raw, path))
        if key and key != buyer and key not in keys:
            keys.append(key)
    return tuple(keys)


def redact_identities(raw: Any, tenant: str, paths: Sequence[tuple[str, tuple[str, ...]]]) -> int:
    """Replace each identity value of ``raw`` at ``paths`` by its key's token; how many were."""
    done = 0
    for kind, steps in paths:
        parent: Any = raw
        for step in steps[:-1]:
            parent = _child(parent, step)
            if parent is None:
                break
        else:
            last = steps[-1]
            value = _child(parent, last)
            if value is None or (isinstance(value, str) and value.startswith("#bk:")):
                continue
            key = core_ext.buyer_key(tenant, kind, value)
            if key:
                _set(parent, last, core_ext.key_token(key))
                done += 1
    return done


def _child(node: Any, step: str) -> Any:
    if isinstance(node, dict):
        return node.get(step)
    if isinstance(node, list) and step.isascii() and step.isdigit() and int(step) < len(node):
        return node[int(step)]
    return None


def _set(node: Any, step: str, value: str) -> None:
    if isinstance(node, dict):
        node[step] = value
    elif isinstance(node, list):
        node[int(step)] = value


__all__ = ["REDACTED_KINDS", "SEARCHED_KINDS", "alias_keys", "alias_paths", "redact_identities", "redacted_paths"]
