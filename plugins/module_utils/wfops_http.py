"""Small HTTP client on the standard library (hosts need no `requests`): JSON calls with retries on 5xx."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any


class HttpError(Exception):
    """An HTTP failure a person can act on; the message never holds a secret header."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Response:
    status: int
    body: bytes
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.body) if self.body.strip() else None

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def request(
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    body: Any = None,
    timeout: float = 15.0,
) -> Response:
    """One request; any status is returned (redirects are not followed), network errors raise HttpError."""
    data = None
    all_headers = {"Accept": "application/json", **(headers or {})}
    if body is not None:
        data = json.dumps(body).encode()
        all_headers["Content-Type"] = "application/json"
    prepared = urllib.request.Request(url, data=data, headers=all_headers, method=method)  # noqa: S310
    try:
        with _OPENER.open(prepared, timeout=timeout) as answer:
            return Response(answer.status, answer.read(), dict(answer.headers.items()))
    except urllib.error.HTTPError as answer:
        return Response(answer.code, answer.read(), dict(answer.headers.items()))
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        host = urllib.parse.urlsplit(url).netloc
        raise HttpError(f"cannot reach {host}: {reason}") from None


def request_with_retries(method: str, url: str, *, attempts: int = 3, delay_s: float = 1.0, **kwargs: Any) -> Response:
    """Retry 5xx answers and network errors (with a growing delay); other answers are returned as they are."""
    last: Response | HttpError | None = None
    for attempt in range(1, attempts + 1):
        try:
            answer = request(method, url, **kwargs)
        except HttpError as exc:
            last = exc
        else:
            if answer.status < 500:
                return answer
            last = answer
        if attempt < attempts:
            time.sleep(delay_s * attempt)
    if isinstance(last, HttpError):
        raise HttpError(f"{last} (after {attempts} attempts)")
    assert last is not None
    raise HttpError(
        f"{urllib.parse.urlsplit(url).path} answered {last.status} {last.text.strip()[:200]}"
        f" (after {attempts} attempts)",
        status=last.status,
    )
