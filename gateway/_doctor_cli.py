"""``gateway doctor``: check the install and say how to fix what is wrong.

    gateway doctor [--config FILE] [--data-dir DIR] [--json] [--only CHECK ...]

One line per finding (``ok`` / ``warn`` / ``fail``), the fix under each non-ok one, a
summary line; ``--json`` prints one object instead (``config``, ``status``,
``exit_status``, ``counts``, ``checks``: each with ``name``, ``subject``, ``status``,
``message``, ``fix``, ``details``). Progress of the long checks goes to stderr. The checks
and what each looks at: ``gateway._appliance.doctor``.

Exit status: 0 all ok, 1 warnings only, 2 at least one failure (a config that does not
load is a failure too).
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from gateway._appliance.doctor import CHECK_NAMES, format_report, run_doctor
from gateway._settings import Settings, default_config_path


def add_doctor_parser(sub: Any, config_options: Callable[[argparse.ArgumentParser], None]) -> argparse.ArgumentParser:
    """Register ``gateway doctor`` on the CLI's sub-parsers; returns its parser."""
    doctor: argparse.ArgumentParser = sub.add_parser(
        "doctor", help="check the install (config, disk, limits, clock, upstream, devices, ports, secrets, store) "
        "and say how to fix each problem",
        description="Check everything an installer gets wrong and say how to fix each: "
        + ", ".join(CHECK_NAMES) + ". Exit status 0 all ok, 1 warnings only, 2 a failure.")
    config_options(doctor)
    doctor.add_argument("--json", action="store_true", help="print one JSON object instead of lines")
    doctor.add_argument("--only", nargs="+", metavar="CHECK", choices=CHECK_NAMES,
                        help=f"run only these checks ({', '.join(CHECK_NAMES)}); config always runs")
    return doctor


def run_doctor_command(args: argparse.Namespace, load: Callable[[], Settings]) -> int:
    """Run ``gateway doctor``; print the report; return its exit status (0/1/2)."""
    if not logging.getLogger().handlers:  # the drivers' own warnings repeat what the doctor reports
        logging.basicConfig(level=logging.CRITICAL)
    config = Path(args.config) if args.config else default_config_path()
    report = run_doctor(load, config, args.only or ())
    if args.json:
        print(orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2).decode())
    else:
        print(f"gateway doctor: {report.config}")
        print(format_report(report))
    return report.exit_status()


__all__ = ["add_doctor_parser", "run_doctor_command"]
