"""The rule sandbox's OpenAPI entries (``gateway._server.sandbox_api``), joined into
``gateway._server.openapi.OPERATIONS``.

It builds on ``Operation`` and the schema helpers of ``gateway._server.openapi``, which imports
this module once those are defined (import ``gateway._server.openapi`` first, never this
module on its own).
"""

from __future__ import annotations

from gateway._server.openapi import (
    _STRING,
    Operation,
    _err,
    _list,
    _obj,
    _ok,
)

_PATH = "/api/v1/sandbox/candidates"
_ID = {"candidate_id": {"type": "string", "pattern": "^c[0-9a-f]{10}$"}}
_CANDIDATE = _obj("id", "files", "changed", "deleted", "replay", files=_list(_STRING), changed=_list(_STRING),
                  deleted=_list(_STRING))
_UPLOAD = {"application/json": _obj(files={"type": "object", "additionalProperties": _STRING},
                                    delete=_list(_STRING), merge_window_s={"type": "number", "minimum": 0},
                                    note=_STRING)}
_REPLAY = {"application/json": _obj(days={"type": "number", "exclusiveMinimum": 0, "maximum": 400},
                                    tenant=_STRING)}

OPERATIONS: tuple[Operation, ...] = (
    Operation("GET", "/sandbox", "sandbox_page", "dashboard", "the rule sandbox page", None,
              responses={200: _ok(_STRING, "page", "text/html")}),
    Operation("GET", "/sandbox/_static/{file}", "sandbox_static", "dashboard", "the sandbox page's script", None,
              responses={200: _ok(_STRING, "file", "text/javascript"), 404: _err("no such file")}),
    Operation("GET", _PATH, "sandbox_candidates", "sandbox", "the uploaded candidate rule sets, newest first",
              responses={200: _ok(_obj("candidates", candidates=_list(_CANDIDATE))),
                         403: _err("a token of one tenant")}),
    Operation("POST", _PATH, "sandbox_upload", "sandbox",
              "upload candidate rule files (and live files it deletes), checked like the live loader checks them",
              "operator", body=_UPLOAD,
              responses={201: _ok(_CANDIDATE, "kept (not live)"),
                         400: _err("bad body, bad file name, invalid rules (errors: file:line: key: ...), or a "
                                   "deleted file that is not live (no_such_live_file)"),
                         403: _err("role or tenant too narrow"), 413: _err("body too large")}),
    Operation("GET", _PATH + "/{candidate_id}", "sandbox_candidate", "sandbox",
              "a candidate with its texts and replay state", path_params=_ID,
              responses={200: _ok(_CANDIDATE), 404: _err("no such candidate")}),
    Operation("POST", _PATH + "/{candidate_id}/replay", "sandbox_replay", "sandbox",
              "replay the last N days of the live event log under the candidate, in a worker thread", "operator",
              path_params=_ID, body=_REPLAY,
              responses={202: _ok(_obj("id", "replay"), "started"), 400: _err("bad body"),
                         403: _err("role or tenant too narrow"), 404: _err("no such candidate"),
                         409: _err("a replay of it is running")}),
    Operation("GET", _PATH + "/{candidate_id}/report", "sandbox_report", "sandbox",
              "the replay's progress (done, total, events/s, ETA) and, once done, its report", path_params=_ID,
              responses={200: _ok(_obj("id", "replay", "report", report={"type": ["object", "null"]})),
                         404: _err("no such candidate, or not replayed yet")}),
    Operation("POST", _PATH + "/{candidate_id}/promote", "sandbox_promote", "sandbox",
              "write the candidate's files into the live rules directory, delete the ones it deletes, and "
              "reload the live rules, as one set (audited)",
              "admin", path_params=_ID,
              responses={200: _ok(_obj("id", "files", "deleted", "rules_digest", "merge_window_note")),
                         403: _err("role or tenant too narrow"), 404: _err("no such candidate"),
                         409: _err("the live rules refused it (the previous files are back), or a file it "
                                   "deletes is not live any more (nothing written)")}),
)

__all__ = ["OPERATIONS"]
