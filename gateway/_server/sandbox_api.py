"""The rule sandbox in the local API: upload a candidate, replay it on the live log, promote it.

Routes (tokens of tenant ``*``: rules are the whole gateway's)::

    GET  /api/v1/sandbox/candidates                    viewer    the candidates, newest first
    POST /api/v1/sandbox/candidates                    operator  {"files": {"erp.toml": "<text>",
                                                       "gifts/demo.toml": "..."}, "delete"?: ["youzan.toml"],
                                                       "merge_window_s"?, "note"?}
                                                       checked like the live loader checks rule files:
                                                       201, or 400 invalid_rules with every file:line: key,
                                                       400 no_such_live_file for a deleted file not live
    GET  /api/v1/sandbox/candidates/{id}               viewer    the candidate, its texts, its replay state
    POST /api/v1/sandbox/candidates/{id}/replay        operator  {"days"?: 30, "tenant"?: "acme"}: replay the last
                                                       N days of the live event log in a worker thread; 202
                                                       with the job, 409 while one runs
    GET  /api/v1/sandbox/candidates/{id}/report        viewer    progress (done, total, events/s, ETA) and,
                                                       once done, the report (``gateway._sandbox.report``)
    POST /api/v1/sandbox/candidates/{id}/promote       admin     write the files into the live rules directory
                                                       (atomically), delete the deleted ones, and reload the
                                                       live rules, as one set; 409 when the live rules refuse
                                                       them (the previous files are back) or a deleted file
                                                       is not live any more (nothing written)

The page: ``GET /sandbox`` (no token: it holds no data; its calls carry one, kept in the tab's
``sessionStorage`` like the dashboard's) and ``GET /sandbox/_static/sandbox.js``, zh-CN by default
with an English switch, under the dashboard's Content-Security-Policy.

Nothing goes live before ``promote``; a replay never writes to the store, never calls the
upstream, never drives a device. Every POST is recorded in the audit trail (``_gateway`` chain,
actor ``token:<name>``) by the guard, with the candidate, its files and the files it deletes in the
record's detail.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
import trio
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway._errors import MalformedEventError, PayloadTooLargeError
from gateway._sandbox.candidates import MAX_FILE_BYTES, MAX_FILES, Candidate, CandidateError, CandidateStore
from gateway._server.dashboard import HEADERS, STATIC_DIR
from gateway._server.http import Protect, error_response, json_response, read_body
from gateway._server.services import Services

SANDBOX_PATH = "/api/v1/sandbox/candidates"
_BODY_BYTES = MAX_FILES * MAX_FILE_BYTES + 64 * 1024
DEFAULT_DAYS = 30.0
MAX_DAYS = 400.0


def _refused(exc: CandidateError, status: int = 400) -> Response:
    extra: dict[str, Any] = {"errors": list(exc.errors)} if exc.errors else {}
    return error_response(status, exc.code, str(exc), exc.message_zh, **extra)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def sandbox_routes(services: Services, protected: Protect) -> list[Route]:
    """The sandbox routes bound to ``services``, each behind ``protected``."""
    settings = services.settings
    candidates = CandidateStore(settings.data_path / "sandbox", services.rules.directory,
                                round(settings.pipeline.merge_window_s * 1000))

    def found(request: Request) -> Candidate | Response:
        candidate = candidates.get(request.path_params["candidate_id"])
        if candidate is None:
            return error_response(404, "no_such_candidate", "no such candidate: list them with GET " + SANDBOX_PATH,
                                  "没有这个候选规则")
        return candidate

    async def body_of(request: Request) -> dict[str, Any] | Response:
        try:
            raw = await read_body(request, _BODY_BYTES, request.headers.get("content-length"))
            body = orjson.loads(raw or b"{}")
        except PayloadTooLargeError:
            return error_response(413, "body_too_large", f"body over {_BODY_BYTES} bytes", "请求体过大")
        except (orjson.JSONDecodeError, MalformedEventError):
            body = None
        if not isinstance(body, dict):
            return error_response(400, "bad_body", "the body must be a JSON object", "请求体须为 JSON 对象")
        return body

    async def list_candidates(request: Request) -> Response:
        return json_response({"candidates": [c.to_dict() for c in candidates.listed()]})

    async def upload(request: Request) -> Response:
        body = await body_of(request)
        if isinstance(body, Response):
            return body
        files, window, note = body.get("files", {}), body.get("merge_window_s"), body.get("note", "")
        deleted = body.get("delete", [])
        if not isinstance(files, dict) or (window is not None and (
                isinstance(window, bool) or not isinstance(window, (int, float)) or window < 0)) or not isinstance(
                note, str) or not isinstance(deleted, list) or not all(isinstance(name, str) for name in deleted):
            return error_response(400, "bad_body", 'give {"files": {"<name>.toml": "<text>"}, "delete"?: '
                                  '["<live name>.toml"], "merge_window_s"?: seconds >= 0, "note"?: "..."}',
                                  "请求体须含 files（文件名 → 文本）和/或 delete（要删除的现行文件名列表）")
        token = request.state.token
        try:
            candidate = await trio.to_thread.run_sync(
                candidates.create, files, None if window is None else float(window), note[:500], f"token:{token.name}",
                _now_ms(), tuple(deleted))
        except CandidateError as exc:
            return _refused(exc)
        request.state.audit = {"candidate": candidate.candidate_id, "files": sorted(candidate.files),
                               "deleted": list(candidate.deleted)}
        return json_response(candidate.to_dict(), 201)

    async def show(request: Request) -> Response:
        candidate = found(request)
        if isinstance(candidate, Response):
            return candidate
        return json_response(candidate.to_dict(with_texts=True))

    async def replay(request: Request) -> Response:
        candidate = found(request)
        if isinstance(candidate, Response):
            return candidate
        body = await body_of(request)
        if isinstance(body, Response):
            return body
        days, tenant = body.get("days", DEFAULT_DAYS), body.get("tenant", "")
        if isinstance(days, bool) or not isinstance(days, (int, float)) or not 0 < days <= MAX_DAYS or not isinstance(
                tenant, str):
            return error_response(400, "bad_body", f'give {{"days"?: 0 < N <= {MAX_DAYS:g}, "tenant"?: "<tenant>"}}',
                                  f"days 须在 0 到 {MAX_DAYS:g} 之间")
        try:
            job = candidates.start_replay(candidate, services.store, float(days), tenant, _now_ms())
        except CandidateError as exc:
            return _refused(exc, 409)
        request.state.audit = {"candidate": candidate.candidate_id, "days": days, "tenant": tenant or "*"}
        return json_response({"id": candidate.candidate_id, "replay": job.to_dict()}, 202)

    async def report(request: Request) -> Response:
        candidate = found(request)
        if isinstance(candidate, Response):
            return candidate
        job = candidate.job
        if job is None:
            return error_response(404, "no_replay", "this candidate was not replayed yet: POST .../replay",
                                  "该候选规则尚未回放")
        return json_response({"id": candidate.candidate_id, "replay": job.to_dict(),
                              "report": job.report if job.state == "done" else None})

    async def promote(request: Request) -> Response:
        candidate = found(request)
        if isinstance(candidate, Response):
            return candidate
        token = request.state.token
        try:
            done = await trio.to_thread.run_sync(candidates.promote, candidate, services.rules, f"token:{token.name}",
                                                 _now_ms())
        except CandidateError as exc:
            return _refused(exc, 409)
        request.state.audit = {"candidate": candidate.candidate_id, "files": done["files"],
                               "deleted": done["deleted"], "rules_digest": done["rules_digest"]}
        return json_response({"id": candidate.candidate_id, **done})

    page_body = (STATIC_DIR / "sandbox.html").read_bytes()
    script = (STATIC_DIR / "sandbox.js").read_bytes()

    async def page(request: Request) -> Response:
        return Response(page_body, media_type="text/html; charset=utf-8", headers=HEADERS)

    async def static_file(request: Request) -> Response:
        if request.path_params["file"] != "sandbox.js":
            return json_response({"error": "no such file: the sandbox page has sandbox.js"}, 404)
        return Response(script, media_type="text/javascript; charset=utf-8", headers=HEADERS)

    path = SANDBOX_PATH + "/{candidate_id}"
    return [
        Route("/sandbox", page, methods=["GET"]),
        Route("/sandbox/_static/{file}", static_file, methods=["GET"]),
        Route(SANDBOX_PATH, protected(list_candidates, "viewer"), methods=["GET"]),
        Route(SANDBOX_PATH, protected(upload, "operator"), methods=["POST"]),
        Route(path, protected(show, "viewer"), methods=["GET"]),
        Route(path + "/replay", protected(replay, "operator"), methods=["POST"]),
        Route(path + "/report", protected(report, "viewer"), methods=["GET"]),
        Route(path + "/promote", protected(promote, "admin"), methods=["POST"]),
    ]


__all__ = ["SANDBOX_PATH", "sandbox_routes"]
