"""Mapping rules: one TOML file per source maps its raw statuses and field names onto the model.

This docstring is the operators' reference for ``config/rules/*.toml``.

Where the files live and when they are read
-------------------------------------------
Every ``*.toml`` file in the rules directory (``[gateway] rules_dir``) is one source; files
whose name starts with ``.`` (editor locks and swap files) and files with other endings are
ignored. The daemon reads the whole directory at start (a broken set refuses to start) and
again whenever a file changes or on SIGHUP; a broken edit is refused as a whole, logged with
``file:line: key: what is wrong``, and the previous rules stay live. ``gateway check-config``
prints every error of a tree before you deploy it. The gift rules in the ``gifts/`` folder of
the same directory are loaded with them, as one set (their format: ``gateway._rules.gifts``).

File layout
-----------
::

    [source]
    name = "douyin"          # REQUIRED. Equals the file name without .toml; [a-z0-9_], 1-32 chars.
    kind = "shop"            # REQUIRED. shop | logistics | erp
    version = 3              # REQUIRED. Integer >= 1. Bump it on every edit: each event's audit
                             # record names the rule that mapped it, "douyin.toml@v3:status.101".
    description = "..."      # optional free text: what the file expects, what is unconfirmed.

    [fields]                 # where the standard fields are in the decoded event
    event_id = "msg_id"                      # REQUIRED. The sender's id of this delivery.
    order_id = ["=douyin", "data.p_id"]      # the order key, always "channel|platform order id".
    status = "tag"                           # REQUIRED. The raw status (looked up in [status]).
    event_type = "tag"                       # optional; default: the source kind.
    occurred_at = "data.update_time"         # optional; when the source says it happened.
    occurred_at_format = "epoch_s"           # REQUIRED with occurred_at: epoch_s | epoch_ms |
                                             # iso8601 | gmt8
    waybill = "data.logistics_msg.logistics_code"   # optional; the carrier waybill number.
    buyer = [ { kind = "phone", path = "data.receiver_msg.tel" } ]   # optional

    [data]                   # optional: extra data fields carried onto the order, name = path
    pay_amount_fen = "data.pay_amount"

    [status]                 # REQUIRED: raw status = standard state (or a pseudo target)
    "101" = "PENDING_REVIEW"
    "207" = "@resume"

At least one of ``order_id`` and ``waybill`` is required: an event that names only a waybill
(a carrier push) is attached to the order that reported that waybill.

Paths
-----
A path is a dotted walk into the decoded event: ``data.p_id`` is ``event["data"]["p_id"]``; a
component made of digits indexes a list (``param.lastResult.data.0.ftime`` is the first
entry of the list ``data``). ``[0]``-style indexes, empty components, spaces and ``|`` are
refused. A value starting with ``=`` is a literal (``"=douyin"``). A field may be one path or
a list of them (a *composite*): the values are joined with ``|``, and the field is absent when
any required part is absent (missing, empty text, an object or a list). An event lacking a
required part of a composite ``status`` has no status and is quarantined.

A part of a composite that some events lack can be made OPTIONAL by ending its path in ``?``:
``status = ["message.type", "message.content.order_status?"]``. An absent optional part reads
as empty text, so a frame without ``order_status`` has the raw status
``"pdd_refund_RefundCreated|"`` (matched by the key ``"pdd_refund_RefundCreated|"`` or, more
usefully, the wildcard ``"pdd_refund_RefundCreated|*"``). A field whose parts are ALL absent
is still absent. ``?`` is only for a part of a composite of ``event_id``, ``order_id``,
``status``, ``waybill`` or ``event_type``; a literal cannot be optional (``"=x?"`` is
refused), nor can a single path (it is simply absent when missing), nor ``occurred_at``,
``buyer`` or ``[data]`` paths. Only the last ``?`` is the mark: ``"a.b??"`` reads the key
``"b?"`` optionally; a key ending in ``?`` cannot otherwise be the end of a path.

``event_id``, ``order_id`` and ``status`` need at least one real path; ``occurred_at``,
``buyer`` paths and ``[data]`` paths are single paths without literals (``[data]`` values are
carried as they are: numbers stay numbers, lists stay lists).

Status table
------------
Keys are raw statuses exactly as the ``status`` field reads them (quote them: ``"101"``). A
composite status gives composite keys (``"pdd_refund_RefundCreated|cancelled"``); the key
``"<first part>|*"`` matches every raw status whose first part is that, when no exact key
does. A key must have as many ``|`` parts as the status field has paths (or be such a
wildcard); a part may be empty only where its path is optional (``"<type>|"`` for the
``["type", "status?"]`` event without a status), and not every part (such an event has no
status). Values are standard states -- ``CREATED PAID PENDING_REVIEW READY_TO_PACK PACKING
PACKED SHIPPED FULFILLMENT_STARTED IN_TRANSIT DELIVERED REFUND_INITIATED REFUNDED CANCELLED
ON_HOLD`` -- or a pseudo target:

* ``"@resume"``: back to the state the order had before it was put on hold or a refund was
  opened (a refund request withdrawn, an after-sale case closed);
* ``"@none"``: record the event (data fields, waybill, audit, upstream) without changing the
  order's state (address changed, remark added, logistics changed).

A raw status not in the table is *quarantined* at run time (kept and visible, never dropped);
so is an event without a status. Add the status here and bump ``version``. Each event's
audit record names the key that mapped it: ``douyin.toml@v3:status.101`` (or the wildcard
key); a quarantined event names only ``douyin.toml@v3``.

Raw statuses are compared as the core reads them: surrounding spaces dropped, numbers as
their decimal text (``101`` and ``"101"`` are one status), ``true``/``false`` for booleans.
A key with surrounding spaces is refused rather than silently never matching.

Buyer identities
----------------
``buyer`` is a list of ``{ kind, path }``; the first identity present in the event is used
for the buyer-group key (merge-pack across channels). Kinds: ``phone`` (normalised digits),
``phone_hash`` (already hashed by the platform), ``device``, ``buyer_id``, ``address``.

Times
-----
``occurred_at`` is read into epoch milliseconds UTC by ``parse_occurred_at``:

* ``epoch_s`` / ``epoch_ms``: an integer (or decimal) number of seconds / milliseconds;
* ``iso8601``: ``2026-11-25T10:00:00+08:00`` (also ``Z``; a time without offset is read as
  China time, UTC+08:00);
* ``gmt8``: ``yyyy-MM-dd HH:mm:ss`` (optionally ``.SSS``) in China time, as TOP and Kuaidi100
  send it.

A missing or unreadable time, or one outside the years 2000-2099 (a unit mistake, seconds
read as milliseconds), gives 0, "unknown": it never refuses the event.

Errors
------
Loading is strict: an unknown (often misspelt) key anywhere, a value of the wrong type, an
unknown state name, a bad path, a ``name`` that differs from the file name, a missing
required field, an unknown time format or buyer kind -- each is reported as
``file:line: key: what is wrong``. Every file is checked and every independent problem is
reported at once (``RuleErrors``); one bad file refuses the whole set, so the daemon never
runs half the rules of an edit. An empty or missing directory is an error too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Protocol

from gateway._errors import ConfigError
from gateway._rules.gifts import GiftFile, GiftFileLoader, GiftRules, gift_files
from gateway._rules.rule_file import BUYER_KINDS, SOURCE_KINDS, RuleFileLoader
from gateway._rules.ruleset import RuleErrors, RuleSet, SourceRules
from gateway._settings import TomlDocument
from gateway._times import TIME_FORMATS, parse_occurred_at


def rule_files(directory: Path) -> list[Path]:
    """The rule files of ``directory``, sorted: ``*.toml`` except names starting with ``.``.

    Raises:
        OSError: the directory cannot be listed.
    """
    return sorted(p for p in directory.glob("*.toml") if not p.name.startswith(".") and p.is_file())


def load_rules(directory: str | Path) -> RuleSet:
    """Load, validate and compile every rule file in ``directory``.

    Args:
        directory: the rules directory.

    Returns:
        The rule set, one ``SourceRules`` per file, with the gift rules of ``gifts/*.toml``.

    Raises:
        RuleErrors: (a ``ConfigError``) with every problem found, each naming file, line and
            key; nothing is returned unless every file is valid.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise RuleErrors([ConfigError(directory, None, "", "rules directory does not exist")])
    try:
        files = rule_files(directory)
    except OSError as exc:
        raise RuleErrors([ConfigError(directory, None, "", f"cannot list rules directory: {exc}")]) from exc
    if not files:
        raise RuleErrors([ConfigError(directory, None, "", "no rule files (*.toml) in the rules directory")])
    errors: list[ConfigError] = []
    rules: dict[str, SourceRules] = {}
    digest = hashlib.sha256()
    for path in files:
        doc = _read(path, path.name, digest, errors)
        if doc is None:
            continue
        loaded = RuleFileLoader(doc).load(errors)
        if loaded is None:
            continue
        if loaded.name in rules:
            errors.append(doc.error(("source", "name"),
                                    f"source {loaded.name!r} is already defined by {rules[loaded.name].path}"))
            continue
        rules[loaded.name] = loaded
    gifts = _load_gifts(directory, digest, errors)
    if errors:
        raise RuleErrors(errors)
    return RuleSet(directory, MappingProxyType(rules), digest.hexdigest()[:16], gifts)


class _Digest(Protocol):
    def update(self, data: bytes, /) -> None: ...


def _read(path: Path, label: str, digest: _Digest, errors: list[ConfigError]) -> TomlDocument | None:
    """Parse one file and add it to ``digest``; ``None`` with the error appended to ``errors``."""
    try:
        content = path.read_bytes()
        text = content.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        errors.append(ConfigError(path, None, "", f"cannot read: {exc}"))
        return None
    digest.update(label.encode() + b"\0" + content + b"\0")
    try:
        return TomlDocument(path, text)
    except ConfigError as exc:
        errors.append(exc)
        return None


def _load_gifts(directory: Path, digest: _Digest, errors: list[ConfigError]) -> GiftRules:
    """The gift rules of ``directory/gifts`` (errors appended to ``errors``)."""
    try:
        paths = gift_files(directory)
    except OSError as exc:
        errors.append(ConfigError(directory / "gifts", None, "", f"cannot list the gifts folder: {exc}"))
        return GiftRules()
    loaded: list[GiftFile] = []
    for path in paths:
        doc = _read(path, f"gifts/{path.name}", digest, errors)
        gift_file = GiftFileLoader(doc).load(errors) if doc is not None else None
        if gift_file is not None:
            loaded.append(gift_file)
    return GiftRules(tuple(loaded))



# -- display ----------------------------------------------------------------------------------

def _show(paths: Sequence[str]) -> str:
    return " + ".join(f'"{p[1:]}"' if p.startswith("=") else p for p in paths) if paths else "-"


def describe(ruleset: RuleSet) -> str:
    """A human summary of a rule set, for ``gateway check-config``."""
    lines = [f"{ruleset.directory}: OK  {len(ruleset)} sources, {len(ruleset.gifts)} gift rules, "
             f"digest {ruleset.digest}"]
    for name, rules in ruleset.items():
        targets = sorted(set(rules.status.values()))
        lines.append(f"  {name:<12} {rules.ref:<22} {rules.kind:<9} {len(rules.status):>3} statuses"
                     f" -> {len(targets)} targets  {rules.description}")
        fields = [f"event_id={_show(rules.event_id)}", f"order_id={_show(rules.order_id)}",
                  f"status={_show(rules.status_paths)}"]
        if rules.waybill:
            fields.append(f"waybill={_show(rules.waybill)}")
        if rules.occurred_at:
            fields.append(f"occurred_at={_show(rules.occurred_at)} ({rules.occurred_at_format})")
        if rules.event_type:
            fields.append(f"event_type={_show(rules.event_type)}")
        if rules.buyer:
            fields.append("buyer=" + ", ".join(f"{kind}:{path}" for kind, path in rules.buyer))
        if rules.data:
            fields.append("data=" + ", ".join(sorted(rules.data)))
        lines.append("               " + "; ".join(fields))
    for gift_file in ruleset.gifts.files:
        lines.append(f"  gifts/{gift_file.path.name}  {gift_file.ref}  {len(gift_file.rules)} rule(s)  "
                     f"{gift_file.description}")
        for rule in gift_file.rules:
            lines.append(f"               {rule.name}: {rule.quantity} x {rule.gift_sku} ({rule.ships}, "
                         f"{rule.scope}) for {rule.tenant or 'every tenant'}")
    return "\n".join(lines)


__all__ = ["BUYER_KINDS", "SOURCE_KINDS", "TIME_FORMATS", "RuleErrors", "RuleSet", "SourceRules",
           "describe", "load_rules", "parse_occurred_at", "rule_files"]
