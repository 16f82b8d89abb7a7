"""POST a JSON body and classify the answer: the transport under the webhook and Slack channels.

2xx: sent. 408, 425, 429 and 5xx: retryable (the receiver may recover; 429's Retry-After is kept).
Other 4xx: permanent. Redirects are not followed (urllib would turn a redirected POST into a GET),
so a 3xx is permanent: fix the URL. Connection errors and timeouts: retryable.
"""

from __future__ import annotations

import http.client
import urllib.error
import urllib.request
from collections.abc import Mapping
from email.message import Message

from sinks.alerts.channels.base import USER_AGENT, SendResult

RETRYABLE_STATUS = frozenset({408, 425, 429})


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: object,
        code: int,
        msg: str,
        headers: Message,
        newurl: str,
    ) -> urllib.request.Request | None:
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def _retry_after(headers: Message | None) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP-date: rare for webhooks; our own backoff applies


def classify(status: int, reason: str, headers: Message | None = None) -> SendResult:
    if 200 <= status < 300:
        return SendResult("sent", f"HTTP {status}", status)
    detail = f"HTTP {status} {reason}".strip()
    if status in RETRYABLE_STATUS or status >= 500:
        return SendResult("retryable", detail, status, _retry_after(headers))
    return SendResult("permanent", detail, status)


def post_json(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> SendResult:
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json; charset=utf-8", "User-Agent": USER_AGENT, **headers},
    )
    try:
        with _opener.open(request, timeout=timeout) as response:
            response.read(64 << 10)  # drain a little, so the connection closes cleanly
            return classify(response.status, response.reason or "")
    except urllib.error.HTTPError as exc:
        return classify(exc.code, exc.reason if isinstance(exc.reason, str) else "", exc.headers)
    except urllib.error.URLError as exc:
        # The reason is an OSError (refused, unreachable, DNS); its text names no URL.
        reason = exc.reason
        if isinstance(reason, OSError):
            return SendResult("retryable", f"connection failed: {type(reason).__name__}: {reason.strerror or reason}")
        return SendResult("retryable", "connection failed")
    except TimeoutError:
        return SendResult("retryable", f"no answer within {timeout:g} s")
    except (http.client.HTTPException, ConnectionError) as exc:
        return SendResult("retryable", f"connection broken: {type(exc).__name__}")
    except OSError as exc:
        return SendResult("retryable", f"network error: {type(exc).__name__}: {exc.strerror or ''}".rstrip(": "))
