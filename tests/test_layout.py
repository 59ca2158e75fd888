"""The package layout is the data flow, and a machine checks it (README "Layout").

``lint-imports`` (import-linter, contracts in ``pyproject.toml``) must pass on the tree and
fail when a module imports against the flow: each test plants one wrong-way import in a
copy of the sources and expects the contract that forbids it to be named as broken.
"""

from __future__ import annotations

import ast
import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests._support import ROOT

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
STAGES = ["_settings", "_rules", "_ingest", "_pipeline", "_store", "_forward", "_packline", "_ops", "_ops_lookup", "_server",
          "_demo", "_appliance", "_fleet", "_customs", "_sandbox"]
FOUNDATION = {"_model", "_errors", "_times", "_metrics", "_backoff", "_addresses", "_signing"}
TOP = {"__init__", "__main__", "_daemon", "_ops_cli", "_devices_cli", "_devices_cli_format", "_catalog_cli", "_token_cli",
       "_install_cli", "_doctor_cli", "_backup_cli", "_customs_cli", "_sandbox_cli", "_fleet_cli", "cli"}


def lint(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--config", str(root / "pyproject.toml")],
                          cwd=root, env=env, capture_output=True, text=True, timeout=120)


def copy_sources(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    for package in ("gateway", "core_ext", "devices"):
        shutil.copytree(ROOT / package, root / package, ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.c"))
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    return root


def test_the_tree_keeps_every_import_contract():
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(("module", "planted", "contract"), [
    ("gateway/_store/values.py", "import gateway._server.app", "gateway stages follow the data flow"),
    ("gateway/_store/base.py", "from gateway._rules import RuleSet", "the store never imports rules"),
    ("gateway/_forward/sink.py", "from gateway._ingest.adapters.erp import ErpAdapter",
     "forwarding does not reach into ingest"),
    ("gateway/_settings/model.py", "import gateway._pipeline", "gateway stages follow the data flow"),
    ("core_ext/_core_py.py", "import gateway._model", "core_ext imports nothing of the gateway"),
    ("devices/__init__.py", "import gateway._store", "devices know bytes and barcodes, not orders"),
])
def test_a_wrong_way_import_breaks_the_lint(tmp_path, module, planted, contract):
    root = copy_sources(tmp_path)
    path = root / module
    path.write_text(path.read_text(encoding="utf-8") + f"\n{planted}  # planted by the test\n", encoding="utf-8")
    result = lint(root)
    assert result.returncode != 0, result.stdout
    broken = [line for line in result.stdout.splitlines() if line.endswith("BROKEN")]
    assert any(line.startswith(contract) for line in broken), result.stdout


def test_the_top_of_gateway_holds_only_the_foundation_and_the_entry_points():
    flat = {path.stem for path in (ROOT / "gateway").glob("*.py")}
    assert flat <= FOUNDATION | TOP, f"a new module belongs in its stage's package: {sorted(flat - FOUNDATION - TOP)}"
    packages = {path.parent.name for path in (ROOT / "gateway").glob("*/__init__.py")}
    assert set(STAGES) <= packages


@pytest.mark.parametrize("stage", STAGES)
def test_each_stage_has_a_face(stage):
    """Its docstring says what comes in and what goes out; the names it exports exist."""
    init = ROOT / "gateway" / stage / "__init__.py"
    doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
    assert "In:" in doc and "Out:" in doc, f"gateway/{stage}/__init__.py must say what comes in and goes out"
    module = importlib.import_module(f"gateway.{stage}")
    assert module.__all__ and all(hasattr(module, name) for name in module.__all__)


def test_tests_mirror_the_tree():
    """Every stage with tests keeps them in tests/<stage>/ (shared helpers live in tests/_support)."""
    flat = sorted(path.name for path in (ROOT / "tests").glob("test_*.py"))
    assert set(flat) <= {"test_addresses.py", "test_backoff.py", "test_cli.py", "test_daemon.py", "test_layout.py",
                         "test_ops_cli.py", "test_devices_cli.py", "test_catalog_cli.py", "test_token_cli.py",
                         "test_install_cli.py", "test_doctor_cli.py", "test_backup_cli.py"}, flat


def test_the_wheel_lists_every_package():
    """pyproject lists the packages by hand (``gateway.default_config`` is a mapped folder that
    ``packages.find`` misses): a new package missing from the list would be missing from the
    wheel an installer gets."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"])
    found = {".".join(path.parent.relative_to(ROOT).parts) for top in ("gateway", "core_ext", "devices")
             for path in (ROOT / top).rglob("__init__.py")}
    assert listed == found | {"gateway.default_config"}
