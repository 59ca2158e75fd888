"""Fleet commands: ``gateway fleet status`` and ``gateway fleet tail``.

Both read ``[upstream.nats]`` of the config (servers, credentials, stream, heartbeat bucket)
and talk to the cluster directly; the gateway need not run on this box.

    gateway fleet status [--json] [--silent-after S] [--lang zh-CN|en]
        the boxes of the cluster (heartbeat bucket): last heartbeat, outbox backlog and its
        age, devices, forwarder state; a box silent for three heartbeat intervals (or
        --silent-after S) is flagged. Exit 0; 1 when a box is silent or the cluster is not
        reachable.
    gateway fleet tail [--durable NAME] [--subject FILTER] [--count N] [--no-follow] [--json]
        a durable pull consumer: prints each event, then acks it; Ctrl-C stops (what was
        printed is acked, the rest stays for the next run).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import nats.errors
import nats.js.errors
import orjson

from gateway._fleet import TailedEvent, judge, read_bucket, render, tail
from gateway._settings import Settings

T = TypeVar("T")

_ERRORS = {
    "zh-CN": {"kind": "配置的 [upstream] kind 不是 \"nats\"：fleet 命令读取 [upstream.nats]（servers、stream、凭据）",
              "unreachable": "无法连接 NATS 集群 {servers}：{reason}。请检查网络、[upstream.nats] 的凭据和 TLS 设置",
              "no_bucket": "心跳桶 {bucket} 不存在：还没有网关以 kind = \"nats\" 运行过（网关首次心跳时创建）",
              "no_heartbeat": "[upstream.nats] heartbeat_bucket 为空：心跳已关闭"},
    "en": {"kind": "[upstream] kind is not \"nats\" in this config: the fleet commands read [upstream.nats] "
                   "(servers, stream, credentials)",
           "unreachable": "cannot reach the NATS cluster {servers}: {reason}; check the network and the "
                          "credentials and TLS settings of [upstream.nats]",
           "no_bucket": "heartbeat bucket {bucket} does not exist: no gateway with kind = \"nats\" has run yet "
                        "(the first heartbeat creates it)",
           "no_heartbeat": "[upstream.nats] heartbeat_bucket is empty: heartbeats are off"},
}


def _run(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run one coroutine on a fresh selector loop (nats-py is asyncio-only; no trio here)."""
    with asyncio.Runner(loop_factory=asyncio.SelectorEventLoop) as runner:
        return runner.run(factory())


def _fail(lang: str, key: str, **values: Any) -> int:
    print(f"error: {_ERRORS[lang][key].format(**values)}", file=sys.stderr)
    return 1


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | nats.errors.NoServersError):
        return "no server answered" if isinstance(exc, nats.errors.NoServersError) else "timed out"
    return f"{type(exc).__name__}: {exc}"[:200]


def fleet_status(args: argparse.Namespace, settings: Settings) -> int:
    nats_settings = settings.upstream.nats
    if not nats_settings.heartbeat_bucket:
        return _fail(args.lang, "no_heartbeat")
    try:
        entries = _run(lambda: read_bucket(nats_settings))
    except nats.js.errors.BucketNotFoundError:
        return _fail(args.lang, "no_bucket", bucket=nats_settings.heartbeat_bucket)
    except (nats.errors.Error, OSError, TimeoutError) as exc:
        return _fail(args.lang, "unreachable", servers=",".join(nats_settings.servers), reason=_reason(exc))
    boxes = judge(entries, time.time(), args.silent_after)
    if args.json:
        print(orjson.dumps({"bucket": nats_settings.heartbeat_bucket, "boxes": [b.as_dict() for b in boxes]}).decode())
    else:
        print(render(boxes, args.lang, nats_settings.heartbeat_bucket, nats_settings.heartbeat_interval_s))
    return 1 if any(box.silent for box in boxes) else 0


def fleet_tail(args: argparse.Namespace, settings: Settings) -> int:
    nats_settings = settings.upstream.nats

    def show(event: TailedEvent) -> None:
        print(event.json() if args.json else event.line(), flush=True)

    try:
        _run(lambda: tail(nats_settings, show, durable=args.durable, subject=args.subject, count=args.count,
                          follow=not args.no_follow))
    except (nats.errors.Error, OSError, TimeoutError) as exc:
        return _fail(args.lang, "unreachable", servers=",".join(nats_settings.servers), reason=_reason(exc))
    return 0


def run_fleet_command(args: argparse.Namespace, settings: Settings) -> int:
    """``gateway fleet status|tail`` (see the module docstring); the exit status."""
    if settings.upstream.kind != "nats":
        return _fail(args.lang, "kind")
    if args.fleet_command == "status":
        return fleet_status(args, settings)
    return fleet_tail(args, settings)


def add_fleet_parser(sub: Any, config_options: Callable[[argparse.ArgumentParser], None]) -> argparse.ArgumentParser:
    """``gateway fleet ...`` under ``sub``; the caller sets ``func``."""
    fleet: argparse.ArgumentParser = sub.add_parser("fleet", help="the boxes feeding one NATS JetStream cluster: status, tail",
                           description="Fleet views over [upstream.nats] of the config (kind = \"nats\").")
    inner = fleet.add_subparsers(dest="fleet_command", required=True, metavar="SUBCOMMAND")
    status = inner.add_parser("status", help="each box's last heartbeat, backlog and devices; silent boxes flagged")
    status.add_argument("--json", action="store_true", help="one JSON object instead of the table")
    status.add_argument("--silent-after", type=float, metavar="S",
                        help="flag a box silent after S seconds without a heartbeat (default: 3 of its intervals)")
    tail_parser = inner.add_parser("tail", help="print the stream's events through a durable consumer, acking each")
    tail_parser.add_argument("--durable", default="gateway-tail", help="the durable consumer's name [gateway-tail]")
    tail_parser.add_argument("--subject", default="", help="subject filter (default: every box's subjects)")
    tail_parser.add_argument("--count", type=int, help="stop after N events")
    tail_parser.add_argument("--no-follow", action="store_true", help="stop when no new event arrives")
    tail_parser.add_argument("--json", action="store_true", help="one JSON object per event")
    for parser in (status, tail_parser):
        config_options(parser)
        parser.add_argument("--lang", choices=["zh-CN", "en"], default="zh-CN", help="language of the output [zh-CN]")
    return fleet
