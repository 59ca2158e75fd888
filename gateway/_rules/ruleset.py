"""The compiled mapping rules: one ``SourceRules`` per rule file, a ``RuleSet`` per directory
(with the directory's gift rules), and ``RuleErrors`` listing every problem found. The file
formats: ``gateway._rules.mapping`` and ``gateway._rules.gifts``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import core_ext
from gateway._errors import ConfigError
from gateway._rules.gifts import GiftRules


class RuleErrors(ConfigError):
    """Every error found in a rules directory; behaves as its first error.

    Args:
        errors: one or more ``ConfigError`` values, each naming file, line and key.

    Attributes:
        errors: all of them, in file order.
    """

    def __init__(self, errors: Sequence[ConfigError]) -> None:
        if not errors:
            raise ValueError("RuleErrors needs at least one error")
        self.errors: tuple[ConfigError, ...] = tuple(errors)
        first = self.errors[0]
        super().__init__(first.path, first.line, first.key, first.message)

    def __str__(self) -> str:
        return "\n".join(ConfigError.__str__(error) for error in self.errors)


@dataclass(frozen=True, eq=False)
class SourceRules:
    """The validated, compiled rules of one source (one rule file).

    Path fields hold tuples of paths (a composite when longer than one; empty when the file
    does not set the field). ``status`` is the table as written (raw status -> target name);
    ``spec`` is the same compiled for ``core_ext.process_batch``.
    """

    name: str
    kind: str
    version: int
    description: str
    path: Path
    event_id: tuple[str, ...]
    order_id: tuple[str, ...]
    status_paths: tuple[str, ...]
    event_type: tuple[str, ...]
    occurred_at: tuple[str, ...]
    occurred_at_format: str
    waybill: tuple[str, ...]
    buyer: tuple[tuple[str, str], ...]
    data: Mapping[str, str]
    status: Mapping[str, str]
    spec: core_ext.SourceSpec = field(repr=False)
    _refs: Mapping[str, str] = field(init=False, repr=False)
    #: ``data`` split for reading: one-key paths ``(name, key)`` and dotted ones ``(name, parts)``.
    flat_data: tuple[tuple[str, str], ...] = field(init=False, repr=False)
    nested_data: tuple[tuple[str, tuple[str, ...]], ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        prefix = f"{self.ref}:status."
        object.__setattr__(self, "_refs", {raw: prefix + raw for raw in self.status})
        object.__setattr__(self, "flat_data", tuple((n, p) for n, p in self.data.items() if "." not in p))
        object.__setattr__(self, "nested_data",
                           tuple((n, tuple(p.split("."))) for n, p in self.data.items() if "." in p))

    @property
    def ref(self) -> str:
        """``douyin.toml@v3``: the file and its version, as audit records cite it."""
        return f"{self.path.name}@v{self.version}"

    def rule_ref(self, raw_status: str | None) -> str:
        """The rule that maps ``raw_status``: ``"douyin.toml@v3:status.101"``.

        A raw status matched by a wildcard names the wildcard key
        (``...:status.pdd_refund_RefundCreated|*``); an unmapped or missing status names the
        file and version only (``"douyin.toml@v3"``): no rule produced it.
        """
        if raw_status is None:
            return self.ref
        found = self._refs.get(raw_status)
        if found is not None:
            return found
        first, bar, _ = raw_status.partition("|")
        if bar:
            return self._refs.get(first + "|*", self.ref)
        return self.ref


@dataclass(frozen=True, eq=False)
class RuleSet:
    """Every source's rules and the gift rules, loaded together from one directory; immutable.

    Attributes:
        directory: where the files were read.
        rules: source name -> its rules.
        digest: a short stable hash of the file names and contents, gift files included (for
            display and metrics).
        gifts: the gift rules of ``<directory>/gifts/*.toml`` (empty without that folder).
    """

    directory: Path
    rules: Mapping[str, SourceRules]
    digest: str
    gifts: GiftRules = field(default_factory=GiftRules)

    def get(self, source: str) -> SourceRules | None:
        """The rules of ``source``, or ``None`` when no file names it."""
        return self.rules.get(source)

    @property
    def sources(self) -> tuple[str, ...]:
        """The source names, sorted."""
        return tuple(sorted(self.rules))

    def items(self) -> Iterator[tuple[str, SourceRules]]:
        """``(source, rules)`` pairs, sorted by source."""
        return iter(sorted(self.rules.items()))

    def __len__(self) -> int:
        return len(self.rules)

    def __contains__(self, source: object) -> bool:
        return source in self.rules

    def __repr__(self) -> str:
        return (f"RuleSet({str(self.directory)!r}, sources={list(self.sources)}, gifts={len(self.gifts)}, "
                f"digest={self.digest!r})")


__all__ = ["RuleErrors", "RuleSet", "SourceRules"]
