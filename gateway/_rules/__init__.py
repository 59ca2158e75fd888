"""Rules: what every system's statuses mean, and how an order may move.

In: the mapping rule files (``config/rules/*.toml``, one per source, edited by operations
staff) and decoded inbound dicts from the ingest adapters.
Out: a validated, immutable ``RuleSet`` (a broken file is refused with file, line and key;
the old rules stay live); normalised ``Event`` values (``normalise_batch``: fields read by
the rules, status mapped, fingerprint and buyer key from ``core_ext``); the state machine's
``decide`` for a current and a proposed status.

Parts: ``ruleset`` (the rule values), ``rule_file`` (reading one file), ``mapping`` (the
set of files, ``load_rules``), ``normalize`` (dict -> ``Event``), ``statemachine`` (the
explicit transition table), ``reload`` (the live ``RuleHolder``: hot reload on file
change, SIGHUP or API).
"""

from gateway._rules.mapping import describe, load_rules, parse_occurred_at, rule_files
from gateway._rules.normalize import normalise_batch
from gateway._rules.reload import RuleHolder, watch_rules, watch_sighup
from gateway._rules.ruleset import RuleErrors, RuleSet, SourceRules
from gateway._rules.statemachine import TRANSITIONS, Decision, decide

__all__ = [
    "TRANSITIONS",
    "Decision",
    "RuleErrors",
    "RuleHolder",
    "RuleSet",
    "SourceRules",
    "decide",
    "describe",
    "load_rules",
    "normalise_batch",
    "parse_occurred_at",
    "rule_files",
    "watch_rules",
    "watch_sighup",
]
