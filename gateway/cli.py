"""The ``gateway`` command line.

    gateway run [--config FILE] [--data-dir DIR] [--host H] [--port N] [--no-demo]
    gateway check-config [PATH]
    gateway audit-verify --tenant T [--config FILE] [--data-dir DIR]
    gateway outbox status|dead|requeue [--config FILE] [--data-dir DIR] ...   (see _ops_cli)
    gateway quarantine list|release --tenant T [--config FILE] [--data-dir DIR] ...
    gateway version

Exit codes: 0 success, 1 invalid config or failed check, 2 usage error (argparse).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from gateway._errors import ConfigError, GatewayError
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


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def cmd_run(args: argparse.Namespace) -> int:
    import trio

    from gateway._daemon import run_gateway

    settings = _settings_from(args)
    _setup_logging(args.log_level or settings.gateway.log_level)
    log.info("config: %s", settings.path)
    trio.run(run_gateway, settings)
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
            print(f"{config}: OK  gateway {settings.gateway.id!r}, http {http.host}:{http.port}, "
                  f"store sync={settings.store.sync}, upstream {upstream}, tenants: {tenants or 'none'}")
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


def cmd_outbox(args: argparse.Namespace) -> int:
    from gateway._ops_cli import cmd_outbox as run

    return run(args, _settings_from(args))


def cmd_quarantine(args: argparse.Namespace) -> int:
    from gateway._ops_cli import cmd_quarantine as run

    return run(args, _settings_from(args))


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
    outbox.set_defaults(func=cmd_outbox)
    quarantine = add_quarantine_parser(sub, config_options)
    quarantine.set_defaults(func=cmd_quarantine)

    version = sub.add_parser("version", help="print the version and the core implementation in use")
    version.set_defaults(func=cmd_version)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``gateway`` console script."""
    args = build_parser().parse_args(argv)
    try:
        result: int = args.func(args)
        return result
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except GatewayError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
