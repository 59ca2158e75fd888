"""The ``gateway`` command line.

    gateway run [--config FILE] [--data-dir DIR] [--host H] [--port N] [--no-demo]
    gateway check-config [PATH]
    gateway audit-verify --tenant T [--config FILE] [--data-dir DIR]
    gateway outbox status|dead|requeue [--config FILE] [--data-dir DIR] ...   (see _ops_cli)
    gateway quarantine list|release --tenant T [--config FILE] [--data-dir DIR] ...
    gateway devices list|monitor|test-print|nvr-check [--config FILE] ...   (see _devices_cli)
    gateway catalog import|show --tenant T ...   products, barcodes, kits (see _catalog_cli)
    gateway stock --tenant T [--json]            gift stock levels with their age
    gateway customs import|board|attributes ...  customs declarations of cross-border orders (see _customs_cli)
    gateway token create|list|revoke ...         scoped API tokens (see _token_cli)
    gateway fleet status|tail [--config FILE] ... the boxes of a NATS fleet (see _fleet_cli)
    gateway export|replay ...                    recorded inputs; replay under candidate rules (see _sandbox_cli)
    gateway version

Exit status (documented in the README):

    0    success
    1    the config or a rule file is invalid, a check failed (audit chain, ...), or another
         error the gateway explains (the message says what to do)
    2    usage error (unknown command or option)
    3    the store cannot be opened: locked by another gateway, damaged, or unwritable
    130  interrupted (Ctrl-C before the graceful shutdown began)

A start-up failure prints one clear message and what to do next; the traceback only with
``--log-level DEBUG``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateway._appliance.logs import QUIET_LOGGERS as QUIET_LOGGERS  # re-exported: the tests import it here
from gateway._appliance.logs import configure_logging
from gateway._errors import ConfigError, GatewayError, StoreError, StoreLockedError
from gateway._rules import RuleErrors
from gateway._settings import Settings, TomlDocument, default_config_path, load_settings, with_overrides

log = logging.getLogger("gateway")


def _settings_from(args: argparse.Namespace) -> Settings:
    path = Path(args.config) if args.config else default_config_path()
    settings = load_settings(path)
    overrides: dict[str, dict[str, Any]] = {}
    if getattr(args, "data_dir", None):
        overrides["gateway"] = {"data_dir": args.data_dir}
    http: dict[str, Any] = {}
    if getattr(args, "host", None):
        http["host"] = args.host
    if getattr(args, "port", None) is not None:
        http["port"] = args.port
    if http:
        overrides["http"] = http
    if getattr(args, "no_demo", False):
        overrides["demo"] = {"enabled": False}
    return with_overrides(settings, **overrides) if overrides else settings


def _setup_logging(level: str, settings: Settings | None = None) -> None:
    """The log as ``[logging]`` says (text on stderr by default): ``gateway._appliance.logs``."""
    configure_logging(level, settings.logging if settings is not None else None, settings=settings)


def cmd_run(args: argparse.Namespace) -> int:
    from functools import partial

    import trio

    from gateway._daemon import run_gateway

    settings = _settings_from(args)
    _setup_logging(args.log_level or settings.gateway.log_level, settings)
    log.info("config: %s", settings.path)
    trio.run(partial(run_gateway, settings, accept_damaged_store=args.accept_damaged_store))
    return 0


def _find_config(path: Path) -> tuple[Path | None, Path]:
    """(gateway.toml or None, rules directory) for a PATH given to check-config."""
    if path.is_file():
        return path, load_settings(path).rules_path
    if (path / "gateway.toml").is_file():
        config = path / "gateway.toml"
        return config, load_settings(config).rules_path
    if (path / "rules").is_dir():
        return None, path / "rules"
    return None, path


def cmd_check_config(args: argparse.Namespace) -> int:
    from gateway._rules import RuleErrors, describe, load_rules

    target = Path(args.path) if args.path else default_config_path().parent
    try:
        config, rules_dir = _find_config(target)
        rules = load_rules(rules_dir)
        if config is not None:
            settings = load_settings(config)
            doc = TomlDocument.load(config)
            for tenant, sources in settings.tenants.items():
                for source in sources:
                    if rules.get(source) is None:
                        raise doc.error(("tenants", tenant, source),
                                        f"no rule file for source {source!r} in {rules_dir}")
            http = settings.http
            tenants = ", ".join(f"{t}[{','.join(sorted(s))}]" for t, s in sorted(settings.tenants.items()))
            upstream = settings.upstream.url or ("the demo's /demo/upstream" if settings.demo.enabled else "off")
            if settings.upstream.kind == "nats":
                from gateway._settings.nats import describe_nats

                upstream = describe_nats(settings.upstream.nats)
            days = settings.store.retention_days
            retention = f"retention {days} days" if days else "retention off"
            print(f"{config}: OK  gateway {settings.gateway.id!r}, http {http.host}:{http.port}, "
                  f"store sync={settings.store.sync}, {retention}, upstream {upstream}, tenants: {tenants or 'none'}")
            from gateway._customs import load_customs

            customs = load_customs(settings.customs_path)  # ConfigError: file:line: key
            print(f"customs: {len(customs.attributes)} declaration attributes, {len(customs.rules)} fill rules"
                  if customs.enabled else "customs: declaration check off (no attributes.toml)")
    except RuleErrors as exc:
        for error in exc.errors:
            print(f"error: {error}", file=sys.stderr)
        print(f"{len(exc.errors)} error(s); config refused", file=sys.stderr)
        return 1
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        print("config refused", file=sys.stderr)
        return 1
    print(describe(rules))
    return 0


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from gateway._store import open_store, store_settings

    settings = _settings_from(args)
    with open_store(store_settings(settings)) as store:
        result = store.verify_audit_chain(args.tenant)
    if result.ok:
        print(f"audit chain of tenant {args.tenant!r}: OK, {result.records} records")
        return 0
    print(f"audit chain of tenant {args.tenant!r}: BROKEN at seq {result.first_bad_seq}: {result.reason}")
    return 1


def _with_settings(module: str, function: str) -> Callable[[argparse.Namespace], int]:
    """The sub-command that runs ``module.function(args, settings)``, imported only when it runs
    (``gateway run`` does not load every command's code)."""

    def command(args: argparse.Namespace) -> int:
        result: int = getattr(importlib.import_module(module), function)(args, _settings_from(args))
        return result

    return command


def cmd_install(args: argparse.Namespace) -> int:
    from gateway._install_cli import run_install_command

    return run_install_command(args)


def cmd_doctor(args: argparse.Namespace) -> int:
    from gateway._doctor_cli import run_doctor_command

    return run_doctor_command(args, lambda: _settings_from(args))


def cmd_sandbox(args: argparse.Namespace) -> int:
    from gateway._sandbox_cli import run_sandbox_command

    return run_sandbox_command(args)


def cmd_version(args: argparse.Namespace) -> int:
    import core_ext
    from gateway import __version__

    print(f"gateway {__version__} (core: {core_ext.IMPLEMENTATION})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gateway",
        description="Warehouse edge gateway: ingest order, refund and logistics events, normalise them "
        "onto one order state machine, keep them in RocksDB and forward them upstream.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def config_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", metavar="FILE",
                       help="gateway.toml to use (default: the embedded config/gateway.toml)")
        p.add_argument("--data-dir", metavar="DIR", help="override [gateway] data_dir")

    run = sub.add_parser("run", help="start the gateway daemon (foreground; SIGINT/SIGTERM stop it "
                         "gracefully, SIGHUP reloads the rules)",
                         description="Start the gateway in the foreground. Without --config it runs the "
                         "embedded default config: HTTP on 127.0.0.1:8780, data in ./data, a simulated "
                         "ERP posting demo orders.")
    config_options(run)
    run.add_argument("--host", help="override [http] host")
    run.add_argument("--port", type=int, help="override [http] port (0 = any free port)")
    run.add_argument("--no-demo", action="store_true", help="do not start the simulated ERP feeder")
    run.add_argument("--accept-damaged-store", action="store_true",
                     help="serve even though the store failed its start-up check (logged as an error; "
                     "`gateway store repair` is the way out)")
    run.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                     help="override [gateway] log_level")
    run.set_defaults(func=cmd_run)

    check = sub.add_parser("check-config", help="validate a config tree and print what it found",
                           description="Validate gateway.toml and every mapping rule file. PATH is a "
                           "config directory (holding gateway.toml and/or rules/), a gateway.toml, or a "
                           "rules directory (default: the embedded config). Errors name file, line and key; "
                           "exit status 1 when anything is wrong.")
    check.add_argument("path", nargs="?", metavar="PATH")
    check.set_defaults(func=cmd_check_config)

    audit = sub.add_parser("audit-verify", help="verify a tenant's tamper-evident audit hash chain "
                           "(the daemon must be stopped: RocksDB is single-writer)")
    config_options(audit)
    audit.add_argument("--tenant", required=True)
    audit.set_defaults(func=cmd_audit_verify)

    from gateway._ops_cli import add_outbox_parser, add_quarantine_parser

    outbox = add_outbox_parser(sub, config_options)
    outbox.set_defaults(func=_with_settings("gateway._ops_cli", "cmd_outbox"))
    quarantine = add_quarantine_parser(sub, config_options)
    quarantine.set_defaults(func=_with_settings("gateway._ops_cli", "cmd_quarantine"))

    from gateway._devices_cli import add_devices_parser

    devices = add_devices_parser(sub, config_options)
    devices.set_defaults(func=_with_settings("gateway._devices_cli", "cmd_devices"))

    from gateway._catalog_cli import add_catalog_commands

    for catalog_parser in add_catalog_commands(sub, config_options):
        catalog_parser.set_defaults(func=_with_settings("gateway._catalog_cli", "run_catalog_command"))

    from gateway._customs_cli import add_customs_parser

    add_customs_parser(sub, config_options).set_defaults(func=_with_settings("gateway._customs_cli", "run_customs_command"))

    from gateway._token_cli import add_token_parser

    add_token_parser(sub, config_options).set_defaults(func=_with_settings("gateway._token_cli", "run_token_command"))

    # -- the appliance (issue 15): install / doctor / backup each register below ------------
    from gateway._install_cli import add_install_parsers

    for install_parser in add_install_parsers(sub):
        install_parser.set_defaults(func=cmd_install)
    from gateway._doctor_cli import add_doctor_parser

    add_doctor_parser(sub, config_options).set_defaults(func=cmd_doctor)
    from gateway._backup_cli import add_backup_commands  # backup, restore, store repair|verify

    for backup_parser in add_backup_commands(sub, config_options):
        backup_parser.set_defaults(func=_with_settings("gateway._backup_cli", "run_backup_command"))

    from gateway._sandbox_cli import add_sandbox_commands  # export, replay (the rule sandbox)

    for sandbox_parser in add_sandbox_commands(sub, config_options):
        sandbox_parser.set_defaults(func=cmd_sandbox)

    from gateway._fleet_cli import add_fleet_parser  # gateway fleet status|tail (NATS JetStream)

    add_fleet_parser(sub, config_options).set_defaults(func=_with_settings("gateway._fleet_cli", "run_fleet_command"))

    version = sub.add_parser("version", help="print the version and the core implementation in use")
    version.set_defaults(func=cmd_version)
    return parser


EXIT_CONFIG = 1
EXIT_USAGE = 2
EXIT_STORE = 3
EXIT_OTHER = 1


def _leaves(error: BaseException) -> list[BaseException]:
    """The exceptions inside (nested) exception groups, in order; trio's nurseries wrap a
    start-up failure in one group per nursery level."""
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in _leaves(inner)]
    return [error]


def _advice(error: GatewayError) -> tuple[int, str]:
    """The exit status for ``error`` and what the operator should do next ("" when its own
    message says it)."""
    if isinstance(error, ConfigError):
        return EXIT_CONFIG, ("fix each line named above; `gateway check-config` checks the config and "
                             "every rule file without starting")
    if isinstance(error, StoreLockedError):
        return EXIT_STORE, ("another gateway (or a `gateway` command) has this data directory open: stop "
                            "it first, or give this one its own --data-dir")
    from gateway._store import StoreDamagedError, StoreFormatError

    if isinstance(error, (StoreDamagedError, StoreFormatError)):
        return EXIT_STORE, ""  # their message names the file and says what to do
    if isinstance(error, StoreError):
        return EXIT_STORE, ("check that the data directory exists, is writable by this user and has free "
                            "space; `gateway audit-verify` checks a store that opens")
    return EXIT_OTHER, ""


def report_failure(error: BaseException, *, debug: bool = False) -> int | None:
    """Print what went wrong (every ``GatewayError`` inside ``error``, rule errors one per
    line) and what to do, on stderr; return the exit status.

    Returns ``None`` when ``error`` holds something that is not a ``GatewayError`` (a bug:
    the caller lets its traceback through).
    """
    leaves = _leaves(error)
    if not leaves or not all(isinstance(leaf, GatewayError) for leaf in leaves):
        return None
    status = EXIT_OTHER
    for index, leaf in enumerate(leaves):
        assert isinstance(leaf, GatewayError)
        lines = [str(e) for e in leaf.errors] if isinstance(leaf, RuleErrors) else [str(leaf)]
        for line in lines:
            print(f"error: {line}", file=sys.stderr)
        code, advice = _advice(leaf)
        status = code if index == 0 else status
        if advice:
            print(f"  what to do: {advice}", file=sys.stderr)
    if debug:
        import traceback

        traceback.print_exception(error, file=sys.stderr)
    return status


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``gateway`` console script (exit statuses in the module docstring)."""
    args = build_parser().parse_args(argv)
    try:
        result: int = args.func(args)
        return result
    except KeyboardInterrupt:
        return 130
    except BaseException as exc:
        if isinstance(exc, BaseExceptionGroup) and all(isinstance(e, KeyboardInterrupt) for e in _leaves(exc)):
            return 130
        debug = (getattr(args, "log_level", None) or "") == "DEBUG"
        status = report_failure(exc, debug=debug)
        if status is None:
            raise
        return status


if __name__ == "__main__":
    sys.exit(main())
