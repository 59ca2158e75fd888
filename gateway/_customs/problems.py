"""How a customs import problem is named and told: ``file:row:column: message``, zh-CN and English.

The same shape as the catalog's problems (``gateway._packline.catalog_problems``, a stage
above this one, so not imported): every problem names ``file:row:column``: for CSV the
physical line (the header is line 1; a quoted cell spanning lines counts from the line its
record starts on) and the column's name; for JSON the 0-based index in its list and the key.
All problems of a file are collected (the first ``MAX_PROBLEMS``) into one
``CustomsImportError``; nothing is stored unless the whole file is valid. Every message says
what is wrong and what to do next.
"""

from __future__ import annotations

from gateway._errors import MAX_FILE_PROBLEMS, FileImportError, FileProblem, FileProblems

MAX_PROBLEMS = MAX_FILE_PROBLEMS

_MESSAGES: dict[str, tuple[str, str]] = {
    "encoding": ("文件不是 UTF-8 编码（{detail}）：请另存为 UTF-8 后重新导入",
                 "the file is not UTF-8 ({detail}): save it as UTF-8 and import again"),
    "json": ("不是有效的 JSON：{detail}", "not valid JSON: {detail}"),
    "csv": ("CSV 无法读取：{detail}", "unreadable CSV: {detail}"),
    "shape": ("JSON 必须是对象列表，或 {{\"{key}\": [...]}}", "JSON must be a list of objects or {{\"{key}\": [...]}}"),
    "header": ("缺少表头：第一行必须是列名，至少包含 {required}",
               "no header: the first line must name the columns, {required} at least"),
    "column": ("未知的列 {name!r}：可用的列是 {known}", "unknown column {name!r}: the columns are {known}"),
    "twice": ("列 {name!r} 出现了两次", "column {name!r} appears twice"),
    "cells": ("这一行的单元格比表头多：检查是否有未加引号的逗号", "this row has more cells than the header: "
              "look for a comma that is not quoted"),
    "object": ("每一项必须是 JSON 对象", "each entry must be a JSON object"),
    "key": ("未知的键 {name!r}：可用的键是 {known}", "unknown key {name!r}: the keys are {known}"),
    "required": ("{name} 不能为空：请填写", "{name} is required: fill it in"),
    "id_chars": ("{name} {value!r} 含有控制字符或超过 64 个字符", "{name} {value!r} holds a control character "
                 "or is over 64 characters"),
    "id_twice": ("{name} {value} 在第 {row} 行已经出现过：每个只能有一行", "{name} {value} is already on row {row}: "
                 "one row each"),
    "text_type": ("必须是文本", "must be text"),
    "value": ("{label}：{zh}", "{label_en}: {en}"),
    "target": ("target 必须是 product、supplier 或 order，而不是 {value!r}",
               "target must be product, supplier or order, not {value!r}"),
    "attribute": ("未知的申报要素 {value!r}：可用的是 {known}", "unknown declaration attribute {value!r}: "
                  "the attributes are {known}"),
    "order_sku": ("target 为 order 时必须填 sku（订单中的哪个商品）", "with target order, sku is required "
                  "(which item of the order)"),
    "order_unknown": ("订单 {value} 不存在：请核对订单号（渠道|订单号，例如 erp|A1）",
                      "no order {value}: check the order id (channel|order no, e.g. erp|A1)"),
    "sku_not_in_order": ("订单 {order} 中没有 SKU {sku}", "order {order} has no SKU {sku}"),
    "field": ("列 {name!r} 的值必须是文本、数字或 true/false", "column {name!r} must be text, a number or true/false"),
}


CustomsProblem = FileProblem  # one problem of a customs import file


class CustomsImportError(FileImportError):
    """A customs import file (products, suppliers, declaration values) is refused; nothing was
    stored (``problems``, ``more``)."""


class Problems(FileProblems):
    """Collects the problems of one customs import file (``check`` raises them all at once)."""

    MESSAGES = _MESSAGES
    ERROR = CustomsImportError


__all__ = ["MAX_PROBLEMS", "CustomsImportError", "CustomsProblem", "Problems"]
