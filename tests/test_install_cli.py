"""``gateway install`` / ``gateway uninstall`` through the CLI: the report lines, exit codes,
the --purge confirmation, and a dry run on this very machine that changes nothing."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from gateway._install_cli import run_install_command
from gateway.cli import build_parser, main


def test_install_then_again_reports_unchanged(tmp_path, capsys):
    root = tmp_path / "root"
    assert main(["install", "--root", str(root)]) == 0
    first = capsys.readouterr().out
    assert "changed  /etc/edge-gateway/secrets.env: created" in first
    assert "skipped  user edge-gateway" in first
    assert main(["install", "--root", str(root)]) == 0
    second = capsys.readouterr().out
    assert "install: 0 changed" in second
    assert "ok       /etc/edge-gateway/gateway.toml: unchanged" in second
    assert all(line.split()[0] in {"ok", "skipped"} for line in second.splitlines()[1:-1])


def test_bad_prefix_is_a_clear_error(tmp_path, capsys):
    assert main(["install", "--root", str(tmp_path), "--prefix", "opt/gw"]) == 1
    assert "--prefix 'opt/gw': give an absolute path" in capsys.readouterr().err


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def uninstall(root: Path, *extra: str, stdin: io.StringIO) -> int:
    args = build_parser().parse_args(["uninstall", "--root", str(root), *extra])
    return run_install_command(args, stdin=stdin)


def test_purge_asks_first(tmp_path, capsys):
    root = tmp_path / "root"
    assert main(["install", "--root", str(root)]) == 0
    data = root / "var/lib/edge-gateway"
    # no terminal and no --yes: refused, nothing removed
    assert uninstall(root, "--purge", stdin=io.StringIO("")) == 2
    assert "--yes" in capsys.readouterr().err and data.is_dir()
    # a terminal, answered "no": nothing removed, not even the unit
    assert uninstall(root, "--purge", stdin=Tty("no\n")) == 2
    assert data.is_dir() and (root / "etc/systemd/system/edge-gateway.service").exists()
    # answered "purge": gone
    assert uninstall(root, "--purge", stdin=Tty("purge\n")) == 0
    assert not data.exists() and not (root / "etc/edge-gateway").exists()


def test_uninstall_without_purge_keeps_data(tmp_path, capsys):
    root = tmp_path / "root"
    assert main(["install", "--root", str(root)]) == 0
    assert main(["uninstall", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "changed  /etc/systemd/system/edge-gateway.service: removed (the unit)" in out
    assert "skipped  /var/lib/edge-gateway: kept (the store: your data)" in out
    assert (root / "var/lib/edge-gateway/data").is_dir()
    assert main(["uninstall", "--root", str(root), "--purge", "--yes"]) == 0
    assert not (root / "var/lib/edge-gateway").exists()


@pytest.mark.skipif(Path("/etc/edge-gateway").exists() or Path("/var/lib/edge-gateway").exists(),
                    reason="this machine has an edge-gateway install; the dry run would report on it")
def test_dry_run_on_this_machine_changes_nothing(capsys):
    assert main(["install", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "dry run: nothing is changed" in out and "would change" in out
    assert not Path("/etc/edge-gateway").exists() and not Path("/var/lib/edge-gateway").exists()
    assert not Path("/etc/systemd/system/edge-gateway.service").exists()
