"""Catalog problems (``gateway._packline.catalog_problems``): each names ``file:row:column`` in
zh-CN with an English twin, all of a file are raised at once, and the count is bounded."""

from __future__ import annotations

import pytest

from gateway._errors import GatewayError
from gateway._packline.catalog_problems import MAX_PROBLEMS, CatalogImportError, CatalogProblem, Problems


def test_a_problem_reads_file_row_column_in_either_language():
    problem = CatalogProblem("c.csv", 3, "sku", "sku 不能为空", "sku is required")
    assert str(problem) == problem.text() == "c.csv:3:sku: sku 不能为空"
    assert problem.text("en") == "c.csv:3:sku: sku is required"
    assert str(CatalogProblem("event e1", None, "", "x", "y")) == "event e1:-:-: x"
    assert problem.to_dict() == {"file": "c.csv", "row": 3, "column": "sku", "message": "sku 不能为空",
                                 "message_en": "sku is required"}


def test_problems_are_raised_together_row_by_row():
    problems = Problems("c.csv")
    problems.check()  # nothing found: nothing raised
    problems.add(4, "kind", "kind", value="thing")
    problems.type(2, "barcodes[0]", "str")
    problems.add(None, "", "header")
    with pytest.raises(CatalogImportError) as caught:
        problems.check()
    assert isinstance(caught.value, GatewayError)
    assert [(p.row, p.column) for p in caught.value.problems] == [(None, ""), (2, "barcodes[0]"), (4, "kind")]
    assert caught.value.problems[1].text("en") == "c.csv:2:barcodes[0]: must be a string"
    assert str(caught.value).splitlines()[2] == "c.csv:4:kind: kind 必须是 item、gift、gift_box、trial 之一，而不是 'thing'"


def test_beyond_the_bound_problems_are_counted_not_kept():
    problems = Problems("big.csv")
    for row in range(MAX_PROBLEMS + 5):
        problems.add(row, "sku", "sku")
    with pytest.raises(CatalogImportError) as caught:
        problems.check()
    assert len(caught.value.problems) == MAX_PROBLEMS and caught.value.more == 5
    assert str(caught.value).endswith("\n... 5 more")
