"""The Workers KV part of Cloudflare's REST API v4, as `rumor kv import --from-cloudflare`
and `rumor kv export --to-cloudflare` use it.

Credentials come from the environment, as wrangler reads them: ``CLOUDFLARE_ACCOUNT_ID``,
``CLOUDFLARE_API_TOKEN`` (sent as ``Authorization: Bearer``) and
``CLOUDFLARE_API_BASE_URL`` (default ``https://api.cloudflare.com/client/v4``).

The calls, under ``/accounts/{account}/storage/kv/namespaces/{namespace}``:

- ``GET keys?limit=1000&cursor=&prefix=``: ``result`` is ``[{name, expiration?,
  metadata?}]``, ``result_info.cursor`` continues it (empty once complete);
- ``POST bulk/get`` ``{"keys": [≤ 100 names], "type": "text"}``: ``result.values`` maps
  each key to its text (``null`` when missing). Values are text only, so one that is
  not UTF-8 arrives with U+FFFD in it and is read again, raw, by
- ``GET values/{key}``: the value's bytes;
- ``PUT bulk`` ``[{key, value, base64?, expiration?, metadata?}]``: at most 10,000
  pairs and 100 MB per request.

Every answer is Cloudflare's envelope ``{success, errors: [{code, message}], result,
result_info}``. 429 and 5xx are retried with backoff, as Cloudflare's SDKs do.
"""

from __future__ import annotations

import http.client
import json
import os
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

DEFAULT_BASE_URL = "https://api.cloudflare.com/client/v4"
MAX_BULK_WRITE = 10_000  # pairs per PUT bulk
MAX_BULK_WRITE_BYTES = 100_000_000  # the whole request
MAX_BULK_GET = 100  # keys per POST bulk/get
LIST_LIMIT = 1000
RETRIES = 5
RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})


class CloudflareError(Exception):
    """Cloudflare (or whatever serves its API) refused a call; the message is its own."""


@dataclass(frozen=True, slots=True)
class CloudflareCredentials:
    account_id: str
    api_token: str
    base_url: str = DEFAULT_BASE_URL

    @classmethod
    def from_environment(cls, environ: dict[str, str] | None = None) -> CloudflareCredentials:
        env = os.environ if environ is None else environ
        account = env.get("CLOUDFLARE_ACCOUNT_ID", "").strip()
        token = env.get("CLOUDFLARE_API_TOKEN", "").strip()
        missing = [
            name
            for name, value in (("CLOUDFLARE_ACCOUNT_ID", account), ("CLOUDFLARE_API_TOKEN", token))
            if not value
        ]
        if missing:
            raise CloudflareError(f"Set {' and '.join(missing)} to reach Cloudflare's API.")
        base = env.get("CLOUDFLARE_API_BASE_URL", "").strip() or DEFAULT_BASE_URL
        return cls(account, token, base.rstrip("/"))


class CloudflareKV:
    """One Workers KV namespace through the REST API. Thread-safe: each thread keeps
    its own keep-alive connection."""

    def __init__(
        self, credentials: CloudflareCredentials, namespace_id: str, timeout: float = 60.0
    ) -> None:
        self.credentials = credentials
        self.namespace_id = namespace_id
        self.timeout = timeout
        url = urllib.parse.urlsplit(credentials.base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise CloudflareError(
                f"CLOUDFLARE_API_BASE_URL must be an http(s) URL, not {credentials.base_url!r}"
            )
        self._url = url
        account = urllib.parse.quote(credentials.account_id, safe="")
        namespace = urllib.parse.quote(namespace_id, safe="")
        self._path = f"{url.path}/accounts/{account}/storage/kv/namespaces/{namespace}"
        self._local = threading.local()

    # ---- the calls --------------------------------------------------------------

    def list_keys(
        self, prefix: str | None = None, cursor: str | None = None, limit: int = LIST_LIMIT
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of ``{name, expiration?, metadata?}`` and the cursor of the next
        (None once complete)."""
        query: dict[str, str] = {"limit": str(limit)}
        if prefix:
            query["prefix"] = prefix
        if cursor:
            query["cursor"] = cursor
        envelope = self._json("GET", "/keys?" + urllib.parse.urlencode(query))
        keys = envelope.get("result") or []
        info = envelope.get("result_info") or {}
        next_cursor = info.get("cursor") or None
        if not keys:
            next_cursor = None
        return list(keys), next_cursor

    def bulk_get_text(self, keys: list[str]) -> dict[str, str | None]:
        """The text of up to 100 keys (None when missing)."""
        envelope = self._json("POST", "/bulk/get", {"keys": keys, "type": "text"})
        values = (envelope.get("result") or {}).get("values") or {}
        return {key: values.get(key) for key in keys}

    def get_bytes(self, key: str) -> bytes | None:
        """A value's raw bytes, None when the key is missing."""
        status, body = self._request("GET", "/values/" + urllib.parse.quote(key, safe=""))
        if status == 404:
            return None
        if status >= 400:
            raise CloudflareError(_message(status, body))
        return body

    def bulk_write(self, items: list[dict[str, Any]]) -> None:
        """Write up to 10,000 wrangler-style items at once."""
        if len(items) > MAX_BULK_WRITE:
            raise ValueError(f"a bulk write takes at most {MAX_BULK_WRITE} pairs")
        envelope = self._json("PUT", "/bulk", items)
        result = envelope.get("result") or {}
        failed = result.get("unsuccessful_keys") or []
        if failed:
            raise CloudflareError(f"Cloudflare did not write {len(failed)} keys: {failed[:5]}")

    # ---- transport --------------------------------------------------------------

    def _json(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        data = None if body is None else json.dumps(body, ensure_ascii=False).encode()
        status, raw = self._request(method, path, data, "application/json")
        if status >= 400:
            raise CloudflareError(_message(status, raw))
        try:
            envelope = json.loads(raw)
        except ValueError:
            raise CloudflareError(f"{method} {path}: not a JSON answer ({status})") from None
        if not isinstance(envelope, dict) or not envelope.get("success", False):
            raise CloudflareError(_message(status, raw))
        return envelope

    def _request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        content_type: str = "application/octet-stream",
    ) -> tuple[int, bytes]:
        headers = {"Authorization": f"Bearer {self.credentials.api_token}"}
        if body is not None:
            headers["Content-Type"] = content_type
        delay = 0.5
        for attempt in range(RETRIES + 1):
            try:
                connection = self._connection()
                connection.request(method, self._path + path, body=body, headers=headers)
                response = connection.getresponse()
                payload = response.read()
            except (OSError, http.client.HTTPException) as exc:
                self._drop_connection()
                if attempt == RETRIES:
                    raise CloudflareError(f"{method} {path}: {exc}") from None
            else:
                if response.will_close:
                    self._drop_connection()
                if response.status not in RETRY_STATUSES or attempt == RETRIES:
                    return response.status, payload
            time.sleep(delay)
            delay = min(delay * 2, 8.0)
        raise AssertionError("unreachable")

    def _connection(self) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if connection is None:
            host, port = self._url.hostname or "", self._url.port
            if self._url.scheme == "https":
                connection = http.client.HTTPSConnection(
                    host, port, timeout=self.timeout, context=ssl.create_default_context()
                )
            else:
                connection = http.client.HTTPConnection(host, port, timeout=self.timeout)
            self._local.connection = connection
        return connection

    def _drop_connection(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None


def _message(status: int, raw: bytes) -> str:
    try:
        envelope = json.loads(raw)
        errors = envelope.get("errors") or []
        text = "; ".join(f"{e.get('message')} ({e.get('code')})" for e in errors)
    except (ValueError, AttributeError):
        text = raw[:200].decode("utf-8", "replace")
    return f"Cloudflare answered {status}: {text or 'no message'}"
