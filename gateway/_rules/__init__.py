"""Rules: what every system's statuses mean, how an order may move, which gifts it earns.

In: the mapping rule files (``config/rules/*.toml``, one per source) and the gift rule files
(``config/rules/gifts/*.toml``), both edited by operations staff; decoded inbound dicts from
the ingest adapters.
Out: a validated, immutable ``RuleSet`` carrying the ``GiftRules`` (a broken file is refused
with file, line and key; the old rules stay live); normalised ``Event`` values
(``normalise_batch``: fields read by the rules, status mapped, fingerprint and buyer key from
``core_ext``); the state machine's ``decide`` for a current and a proposed status;
``evaluate_gifts``: a pack group's ``GiftOrder`` values -> ``GiftGrant`` values.

Parts: ``ruleset`` (the rule values), ``rule_file`` (reading one file), ``mapping`` (the
set of files, ``load_rules``), ``gift_file`` (the gift rule format and its checks),
``gifts`` (the gift values and their evaluation), ``normalize`` (dict -> ``Event``),
``statemachine`` (the explicit transition table), ``reload`` (the live ``RuleHolder``: hot
reload on file change, SIGHUP or API).
"""

from gateway._rules.gifts import GiftGrant, GiftOrder, GiftRule, GiftRules, ShipWhen, evaluate_gifts
from gateway._rules.mapping import describe, load_rules, parse_occurred_at, rule_files
from gateway._rules.normalize import normalise_batch
from gateway._rules.reload import RuleHolder, watch_rules, watch_sighup
from gateway._rules.ruleset import RuleErrors, RuleSet, SourceRules
from gateway._rules.statemachine import TRANSITIONS, Decision, decide

__all__ = [
    "TRANSITIONS",
    "Decision",
    "GiftGrant",
    "GiftOrder",
    "GiftRule",
    "GiftRules",
    "RuleErrors",
    "RuleHolder",
    "RuleSet",
    "ShipWhen",
    "SourceRules",
    "decide",
    "describe",
    "evaluate_gifts",
    "load_rules",
    "normalise_batch",
    "parse_occurred_at",
    "rule_files",
    "watch_rules",
    "watch_sighup",
]
