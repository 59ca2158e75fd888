"""The local gateway as the CLI reaches it: its API when it runs, else its store directly.

RocksDB admits one process, so an operator command (``gateway outbox``, ``gateway catalog``)
talks to the running gateway's local API (the address is ``[http] host/port`` of the config,
the token the file ``[api] token_file`` points at) and, only when nothing answers there,
opens the store itself. A gateway that holds the store but whose API does not answer is
reported as such, never guessed around.
"""

from __future__ import annotations

from typing import Any

import httpx

from gateway._errors import GatewayError, StoreError
from gateway._settings import Settings
from gateway._store import Store, open_store, store_settings


class LocalGateway:
    """The running gateway's API (``client``), or the store opened directly (``store``).

    Args:
        settings: the gateway's settings.
        timeout_s: per API request.
        store_fallback: when the API does not answer, open the store (``False``: leave both
            ``client`` and ``store`` ``None``, for commands that need no store, such as
            ``gateway token``).

    Raises:
        GatewayError: the API does not answer and the store cannot be opened (locked by a
            gateway whose API is unreachable, or damaged).
    """

    def __init__(self, settings: Settings, *, timeout_s: float = 10.0, store_fallback: bool = True) -> None:
        self.settings = settings
        http = settings.http
        host = f"[{http.host}]" if ":" in http.host else http.host
        self.base = f"http://{host}:{http.port}"
        self.client: httpx.Client | None = None
        self.store: Store | None = None
        token = settings.token_path.read_text(encoding="utf-8").strip() if settings.token_path.exists() else ""
        if token and http.port:
            client = httpx.Client(base_url=self.base, timeout=timeout_s, headers={"Authorization": f"Bearer {token}"})
            try:
                client.get("/livez")
                self.client = client
                return
            except httpx.HTTPError:
                client.close()
        if not store_fallback:
            return
        try:
            self.store = open_store(store_settings(settings))
        except StoreError as exc:
            raise GatewayError(f"the gateway's API at {self.base} does not answer and the store cannot be "
                               f"opened: {exc}") from exc

    def get(self, path: str, *, missing_ok: bool = False, **params: Any) -> dict[str, Any] | None:
        """The JSON of ``GET path`` on the API (``None`` on 404 when ``missing_ok``).

        Raises:
            GatewayError: any other answer than 200.
        """
        assert self.client is not None
        reply = self.client.get(path, params={k: v for k, v in params.items() if v is not None})
        if reply.status_code == 404 and missing_ok:
            return None
        if reply.status_code != 200:
            raise GatewayError(f"GET {path}: HTTP {reply.status_code}: {reply.text[:200]}")
        result: dict[str, Any] = reply.json()
        return result

    def close(self) -> None:
        """Close the API client or the store (idempotent)."""
        if self.client is not None:
            self.client.close()
        if self.store is not None:
            self.store.close()


__all__ = ["LocalGateway"]
