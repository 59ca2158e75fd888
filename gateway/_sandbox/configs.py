"""The two configurations a replay compares: the live one and a candidate.

A configuration is what decides an order's fate from the same inputs: the mapping rules,
the gift rules (both one ``RuleSet``, ``gateway._rules.load_rules``) and the pack-group
setting (``[pipeline] merge_window_s``).

A candidate directory holds only the files an operator changed: mapping files
(``*.toml``) and gift files (``gifts/*.toml``). ``load_candidate`` lays them over the live
rules directory (a file of the same name replaces the live one, a new name is added) in a
temporary directory and loads that with the live loader, so a broken file is refused the
same way (``file:line: key: ...``), with the error naming the candidate's own file, not the
temporary copy. The live directory is only read.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from gateway._errors import ConfigError
from gateway._rules import RuleErrors, RuleSet, load_rules, rule_files
from gateway._rules.gift_file import gift_files


@dataclass(frozen=True)
class Configuration:
    """One side of a replay.

    Attributes:
        label: ``live`` or ``candidate``.
        rules: mapping and gift rules.
        merge_window_ms: the cross-channel pack-group window (0: grouping off).
        changed: the files that differ from the live directory (``gifts/x.toml`` for gift files).
    """

    label: str
    rules: RuleSet
    merge_window_ms: int
    changed: tuple[str, ...] = field(default=())


def candidate_files(candidate_dir: Path) -> list[tuple[str, Path]]:
    """``(name, path)`` of a candidate directory's rule files (gift files as ``gifts/<name>``).

    Raises:
        ConfigError: the directory does not exist or holds no rule file.
    """
    if not candidate_dir.is_dir():
        raise ConfigError(candidate_dir, None, "", "candidate rules directory does not exist")
    found = [(path.name, path) for path in rule_files(candidate_dir)]
    found += [(f"gifts/{path.name}", path) for path in gift_files(candidate_dir)]
    if not found:
        raise ConfigError(candidate_dir, None, "", "no rule files (*.toml or gifts/*.toml) in the candidate directory")
    return found


def load_live(live_dir: Path, merge_window_ms: int) -> Configuration:
    """The live configuration (``RuleErrors`` when the live rules themselves are broken)."""
    return Configuration("live", load_rules(live_dir), merge_window_ms)


def load_candidate(live_dir: Path, candidate_dir: Path, merge_window_ms: int) -> Configuration:
    """The candidate: ``candidate_dir``'s files over the live directory's (see the module docstring).

    Raises:
        RuleErrors: a file is invalid (each error names the candidate's file, line and key).
        ConfigError: the candidate directory is missing or empty.
    """
    files = candidate_files(candidate_dir)
    with tempfile.TemporaryDirectory(prefix="gateway-sandbox-") as temp:
        merged = Path(temp)
        (merged / "gifts").mkdir()
        origin: dict[str, Path] = {}
        for path in rule_files(live_dir) if live_dir.is_dir() else []:
            shutil.copyfile(path, merged / path.name)
            origin[str(merged / path.name)] = path
        for path in gift_files(live_dir) if live_dir.is_dir() else []:
            shutil.copyfile(path, merged / "gifts" / path.name)
            origin[str(merged / "gifts" / path.name)] = path
        changed = []
        for name, path in files:
            target = merged / name
            if not target.exists() or target.read_bytes() != path.read_bytes():
                changed.append(name)
            shutil.copyfile(path, target)
            origin[str(target)] = path
        try:
            rules = load_rules(merged)
        except RuleErrors as exc:
            raise RuleErrors([_renamed(error, origin, merged, candidate_dir) for error in exc.errors]) from None
    return Configuration("candidate", rules, merge_window_ms, tuple(sorted(changed)))


def _renamed(error: ConfigError, origin: dict[str, Path], merged: Path, candidate_dir: Path) -> ConfigError:
    """``error`` naming the file the operator edited instead of the temporary copy."""
    path = origin.get(error.path)
    if path is None:
        path = Path(error.path.replace(str(merged), str(candidate_dir)))
    return ConfigError(path, error.line, error.key, error.message)


__all__ = ["Configuration", "candidate_files", "load_candidate", "load_live"]
