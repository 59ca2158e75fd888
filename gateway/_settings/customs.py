"""``[customs]``: where the customs-declaration configuration of cross-border orders lives.

The section only says where; what is required (the declaration attributes, which orders are
cross-border, the fill rules) is its own files, read and checked by ``gateway._customs``::

    [customs]
    dir = "customs"      # relative to gateway.toml: attributes.toml (+ fill_rules.toml)

A directory that does not exist turns the check off (no order is held for its declaration);
the embedded default configuration ships ``config/customs`` with a seed of twelve attributes.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CustomsSection:
    """``[customs]``.

    Attributes:
        dir: the directory of ``attributes.toml`` and ``fill_rules.toml``, relative to the
            config file ["customs"]; missing = the declaration check is off.
    """

    dir: str = "customs"


__all__ = ["CustomsSection"]
