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

A candidate can also *delete* a live file: an empty marker file named after it with
``.delete`` appended (``youzan.toml.delete``, ``gifts/demo.toml.delete``; its content is
ignored) says "this live file is gone in the candidate". The candidate is then loaded without
that file: a deleted mapping file's source has no rules, so its events are refused on the
candidate side as the live gateway refuses a source it has no rules for (the webhook answers
404 and stores nothing); a deleted gift file's rules grant nothing. A marker for a file the
live directory does not hold, or beside a file of the same name, is refused (``ConfigError``
naming the marker). ``Configuration.deleted`` names the deleted files.
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
        deleted: the live files the candidate deletes (same naming).
    """

    label: str
    rules: RuleSet
    merge_window_ms: int
    changed: tuple[str, ...] = field(default=())
    deleted: tuple[str, ...] = field(default=())


#: The suffix of a deletion marker: ``erp.toml.delete`` deletes the live ``erp.toml``.
DELETE_SUFFIX = ".delete"


def candidate_files(candidate_dir: Path) -> list[tuple[str, Path]]:
    """``(name, path)`` of a candidate directory's rule files (gift files as ``gifts/<name>``).

    Raises:
        ConfigError: the directory does not exist or holds neither a rule file nor a
            deletion marker.
    """
    if not candidate_dir.is_dir():
        raise ConfigError(candidate_dir, None, "", "candidate rules directory does not exist")
    found = [(path.name, path) for path in rule_files(candidate_dir)]
    found += [(f"gifts/{path.name}", path) for path in gift_files(candidate_dir)]
    if not found and not candidate_deletions(candidate_dir):
        raise ConfigError(candidate_dir, None, "", "no rule files (*.toml or gifts/*.toml) and no deletion marker "
                          f"(<name>.toml{DELETE_SUFFIX}) in the candidate directory")
    return found


def candidate_deletions(candidate_dir: Path) -> list[tuple[str, Path]]:
    """``(name of the deleted live file, marker path)`` of a candidate directory's deletion
    markers (``gifts/<name>`` for gift files), sorted."""
    markers = [(path.name, path) for path in sorted(candidate_dir.glob(f"*.toml{DELETE_SUFFIX}"))]
    markers += [(f"gifts/{path.name}", path) for path in sorted(candidate_dir.glob(f"gifts/*.toml{DELETE_SUFFIX}"))]
    return [(name.removesuffix(DELETE_SUFFIX), path) for name, path in markers
            if not path.name.startswith(".") and path.is_file()]


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
        deleted = _delete(merged, candidate_deletions(candidate_dir), {name for name, _ in files})
        try:
            rules = load_rules(merged)
        except RuleErrors as exc:
            raise RuleErrors([_renamed(error, origin, merged, candidate_dir) for error in exc.errors]) from None
    return Configuration("candidate", rules, merge_window_ms, tuple(sorted(changed)), deleted)


def _delete(merged: Path, markers: list[tuple[str, Path]], given: set[str]) -> tuple[str, ...]:
    """Remove the marked files from the merged copy of the live rules; the names removed.

    Raises:
        ConfigError: a marker names a file the live directory does not hold, or one the
            candidate also gives.
    """
    for name, marker in markers:
        if name in given:
            raise ConfigError(marker, None, "", f"the candidate both gives {name} and deletes it: "
                              f"remove {marker.name} or {name}")
        target = merged / name
        if not target.is_file():
            raise ConfigError(marker, None, "", f"{name} is not a live rule file, so it cannot be deleted: "
                              f"remove {marker.name} (the live files are listed by GET /api/v1/rules)")
        target.unlink()
    return tuple(sorted(name for name, _ in markers))


def _renamed(error: ConfigError, origin: dict[str, Path], merged: Path, candidate_dir: Path) -> ConfigError:
    """``error`` naming the file the operator edited instead of the temporary copy."""
    path = origin.get(error.path)
    if path is None:
        path = Path(error.path.replace(str(merged), str(candidate_dir)))
    return ConfigError(path, error.line, error.key, error.message)


__all__ = ["DELETE_SUFFIX", "Configuration", "candidate_deletions", "candidate_files", "load_candidate", "load_live"]
