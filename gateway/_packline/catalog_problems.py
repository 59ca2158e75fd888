"""How a catalog problem is named and told: ``file:row:column: message``, zh-CN with an English twin.

Every problem names ``file:row:column``: for CSV the physical line (the header is line 1; a
quoted cell spanning lines counts from the line the record starts on); for JSON the 0-based
index in its list (``stock.`` prefixes the column of a ``stock`` entry) and the key; for an ERP
event ``event <event_id>:-:<key path>``. All problems of a file are collected (the first
``MAX_PROBLEMS``) into one ``CatalogImportError``; nothing is stored unless the whole file is
valid. Every message says what is wrong and what to do next.
"""

from __future__ import annotations

from gateway._errors import MAX_FILE_PROBLEMS, FileImportError, FileProblem, FileProblems

MAX_PROBLEMS = MAX_FILE_PROBLEMS

_MESSAGES: dict[str, tuple[str, str]] = {
    "encoding": ("文件不是 UTF-8 编码（{detail}）：请另存为 UTF-8 后重新导入",
                 "the file is not UTF-8 ({detail}): save it as UTF-8 and import again"),
    "json": ("不是有效的 JSON：{detail}", "not valid JSON: {detail}"),
    "csv": ("CSV 无法读取：{detail}", "unreadable CSV: {detail}"),
    "shape": ('JSON 必须是商品列表或 {{"products": [...], "stock": [...]}}',
              'JSON must be a list of products or {{"products": [...], "stock": [...]}}'),
    "header": ("缺少表头：第一行必须是列名，至少包含 sku", "no header: the first line must name the columns, sku at least"),
    "column": ("未知的列 {name!r}：可用的列是 {known}", "unknown column {name!r}: the columns are {known}"),
    "twice": ("列 {name!r} 出现了两次", "column {name!r} appears twice"),
    "cells": ("这一行的单元格比表头多", "this row has more cells than the header"),
    "object": ("每一项必须是 JSON 对象", "each entry must be a JSON object"),
    "type": ("必须是{zh}", "must be {en}"),
    "sku": ("sku 不能为空", "sku is required"),
    "sku_chars": ("sku {value!r} 含有不允许的字符（| * 或控制字符）或超过 64 个字符",
                  "sku {value!r} holds a character that is not allowed (| * or a control character) "
                  "or is over 64 characters"),
    "text": ("{value!r} 含有控制字符或过长", "{value!r} holds a control character or is too long"),
    "sku_twice": ("SKU {sku} 在第 {row} 行已经出现过：每个 SKU 只能有一行",
                  "SKU {sku} is already on row {row}: one row per SKU"),
    "kind": ("kind 必须是 item、gift、gift_box、trial 之一，而不是 {value!r}",
             "kind must be one of item, gift, gift_box, trial, not {value!r}"),
    "check_digit": ("条码 {code} 是 {n} 位数字，按 GTIN 校验位不对（{detail}）：请核对条码；内部码请加字母前缀",
                    "barcode {code} has {n} digits but its GTIN check digit is wrong ({detail}): check it; "
                    "give an internal code a letter"),
    "barcode_row": ("条码 {code} 已用于第 {row} 行的 SKU {sku}：一个条码只能属于一个 SKU",
                    "barcode {code} already belongs to SKU {sku} on row {row}: one SKU per barcode"),
    "barcode_catalog": ("条码 {code} 已属于商品库中的 SKU {sku}：先从那个 SKU 上去掉它，或在同一文件中一起修改",
                        "barcode {code} already belongs to SKU {sku} in the catalog: remove it there first, "
                        "or change both in this file"),
    "kit_barcode": ("套装本身不扫码（扫的是组件）：请把条码写到组件上",
                    "a kit is not scanned itself (its parts are): put the barcodes on the parts"),
    "kit_stock": ("套装没有自己的库存（组件有）：请把库存写到组件上",
                  "a kit has no stock of its own (its parts have): give the parts the stock"),
    "part": ("组件写法是 SKU*数量，例如 A1*2，而不是 {value!r}", "a part is SKU*QTY, e.g. A1*2, not {value!r}"),
    "quantity": ("数量必须是正整数，而不是 {value!r}", "the quantity must be a positive integer, not {value!r}"),
    "part_twice": ("组件 {sku} 写了两次：请合并数量", "part {sku} is listed twice: add the quantities up"),
    "part_unknown": ("组件 {sku} 不在本文件中，也不在商品库中：请先导入它",
                     "part {sku} is neither in this file nor in the catalog: import it first"),
    "cycle": ("套装循环引用：{path}", "the kit contains itself: {path}"),
    "deep": ("套装嵌套超过 {max} 层：{path}", "kits nest deeper than {max} levels: {path}"),
    "weight": ("weight_g 必须是不小于 0 的整数（克）或留空，而不是 {value!r}",
               "weight_g must be a whole number of grams >= 0 or empty, not {value!r}"),
    "flag": ("serialised 必须是 1/0、true/false、yes/no、是/否 或留空，而不是 {value!r}",
             "serialised must be 1/0, true/false, yes/no or empty, not {value!r}"),
    "stock": ("库存必须是整数，而不是 {value!r}", "stock must be an integer, not {value!r}"),
    "stock_unknown": ("SKU {sku} 不在本文件中，也不在商品库中：先导入商品再设库存",
                      "SKU {sku} is neither in this file nor in the catalog: import the product first"),
    "stock_twice": ("SKU {sku} 的库存给了两次", "the stock of SKU {sku} is given twice"),
    "key": ("未知的键 {name!r}：可用的键是 {known}", "unknown key {name!r}: the keys are {known}"),
    "event": ("{zh}", "{en}"),
}
_TYPES = {"str": ("字符串", "a string"), "list": ("列表", "a list"), "int": ("整数", "an integer"),
          "bool": ("true 或 false", "true or false"), "object": ("JSON 对象", "an object")}


CatalogProblem = FileProblem  # one problem of a catalog file or update


class CatalogImportError(FileImportError):
    """A catalog file or ERP catalog event is refused; nothing was stored (``problems``, ``more``)."""


class Problems(FileProblems):
    """Collects the problems of one catalog file or event (``check`` raises them all at once)."""

    MESSAGES = _MESSAGES
    ERROR = CatalogImportError

    def type(self, row: int | None, column: str, expected: str) -> None:
        """A value of the wrong JSON type (``expected``: ``str``, ``list``, ``int``, ``bool``, ``object``)."""
        zh, en = _TYPES[expected]
        self.add(row, column, "type", zh=zh, en=en)


__all__ = ["MAX_PROBLEMS", "CatalogImportError", "CatalogProblem", "Problems"]
