"""Customs-declaration completeness of cross-border orders (issue 16, part 4).

In: ``[customs] dir`` (``attributes.toml``: the required attributes and which orders are
cross-border; ``fill_rules.toml``: where a value is taken from), product and supplier master
data and declaration values imported from CSV/JSON files, the orders in the store.
Out: each open cross-border order's ``Declaration`` (its values, where each came from, what
is missing and which product or supplier record would fill it) for the pre-declaration
board; the pack station's ``DECLARATION_INCOMPLETE`` stop (``hold_stop``); the
``customs_hold`` records the anomaly board shows; and, once a declaration is complete, a
``declaration`` event for the pipeline (forwarded upstream as its own type) with the
``declaration`` record that remembers it was sent.

Parts: ``attributes`` (an attribute's type and a value checked; pure), ``config`` (the files,
every problem ``file:line: key``), ``master`` (import files read, every problem
``file:row:column``; pure), ``problems`` (how an import problem is told, zh-CN and English),
``declare`` (cross-border, the declaration, the stop and the event; pure), ``records`` (the
store's customs records, the board, what an import writes).
Extracting values from PDF test reports is out of scope: values come from files and people.
"""

from gateway._customs.attributes import (
    COUNTRIES,
    TYPES,
    AppliesTo,
    Attribute,
    AttributeType,
    Value,
    check_value,
)
from gateway._customs.config import CrossBorder, CustomsConfig, FillRule, load_customs
from gateway._customs.declare import (
    EVENT_TYPE,
    OPEN_STATUSES,
    VERDICT,
    Declaration,
    Need,
    cross_border,
    declaration_event,
    declare,
    hold_stop,
)
from gateway._customs.master import MasterKind, MasterRow, ValueRow, parse_master, parse_values
from gateway._customs.problems import CustomsImportError, CustomsProblem
from gateway._customs.records import (
    DECLARATION,
    HOLD,
    MasterData,
    apply_master,
    apply_values,
    board,
    completions,
    declaration_forward,
    declare_stored,
    hold_writes,
    import_write,
    load_master,
    master_counts,
)

__all__ = [
    "COUNTRIES", "DECLARATION", "EVENT_TYPE", "HOLD", "OPEN_STATUSES", "TYPES", "VERDICT", "AppliesTo", "Attribute",
    "AttributeType", "CrossBorder", "CustomsConfig", "CustomsImportError", "CustomsProblem", "Declaration", "FillRule",
    "MasterData", "MasterKind", "MasterRow", "Need", "Value", "ValueRow", "apply_master", "apply_values", "board",
    "check_value", "completions", "cross_border", "declaration_event", "declaration_forward", "declare",
    "declare_stored", "hold_stop", "hold_writes", "import_write", "load_customs", "load_master", "master_counts",
    "parse_master", "parse_values",
]
