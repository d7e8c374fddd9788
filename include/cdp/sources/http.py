"""One HTTP client for every connector: bounded retries with exponential backoff that honour Retry-After.

Why one client: retry rules are where connectors usually differ by accident. Here 429, 5xx,
connection errors and timeouts are retried up to ``max_attempts`` with exponential backoff and
jitter, waiting at least what the server asked for in Retry-After (capped by ``max_delay``);
401/403 become ``AuthError`` through the connector's own classifier; anything else non-2xx is a
``ContractError``. Logs name the URL path and status, never query strings (tokens live there
for Moodle) or bodies (personal data).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import orjson
import requests

from cdp.sources.base import AuthError, ContractError, RateLimitExhausted, SourceSettings, TransientError

log = logging.getLogger(__name__)

RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass
class RetryPolicy:
    max_attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 60.0
    timeout: float = 30.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)

    @classmethod
    def from_settings(cls, settings: SourceSettings) -> RetryPolicy:
        extra = settings.extra
        return cls(
            max_attempts=int(extra.get("max_attempts", 6)),
            base_delay=float(extra.get("retry_base_delay", 0.5)),
            max_delay=float(extra.get("retry_max_delay", 60.0)),
            timeout=float(extra.get("timeout", 30.0)),
            sleep=extra.get("sleep", time.sleep),
        )

    def backoff(self, attempt: int, retry_after: float | None) -> float:
        delay = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        delay *= 0.75 + random.random() / 2  # noqa: S311 - jitter, not security
        if retry_after is not None:
            delay = max(delay, retry_after)
        return min(delay, self.max_delay)


# classify(response) -> an exception to raise (AuthError/ContractError/...) or None when fine.
Classifier = Callable[[requests.Response], Exception | None]


class HttpClient:
    """A requests.Session with the retry policy and the vendor's error classifier."""

    def __init__(
        self,
        source: str,
        settings: SourceSettings,
        *,
        headers: Mapping[str, str] | None = None,
        classify: Classifier | None = None,
        policy: RetryPolicy | None = None,
    ) -> None:
        self.source = source
        self.base_url = settings.base_url.rstrip("/")
        self.policy = policy or RetryPolicy.from_settings(settings)
        self.session = requests.Session()
        self.session.headers.update({"User-Agent": "cdp-sync/0.1", "Accept": "application/json"})
        self.session.headers.update(dict(headers or {}))
        self.classify = classify or (lambda response: None)
        self.requests_made = 0
        self.retries = 0

    def url(self, path: str) -> str:
        return path if path.startswith("http") else f"{self.base_url}{path}"

    def get_json(
        self,
        path: str,
        params: Mapping[str, Any] | list[tuple[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
        method: str = "GET",
        data: Mapping[str, Any] | list[tuple[str, Any]] | None = None,
    ) -> Any:
        response = self.request(method, path, params=params, headers=headers, data=data)
        try:
            return orjson.loads(response.content)
        except ValueError as error:
            raise ContractError(
                f"{self.source}: {urlsplit(response.url).path} answered non-JSON "
                f"({response.headers.get('Content-Type')})"
            ) from error

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        url = self.url(path)
        shown = urlsplit(url).path
        last_problem = ""
        for attempt in range(1, self.policy.max_attempts + 1):
            self.requests_made += 1
            retry_after: float | None = None
            try:
                response = self.session.request(method, url, timeout=self.policy.timeout, **kwargs)
            except (requests.Timeout, requests.ConnectionError) as error:
                last_problem = f"{type(error).__name__}"
            else:
                problem = self.classify(response)
                if problem is None and response.status_code < 400:
                    return response
                if isinstance(problem, RateLimitExhausted):
                    raise problem
                if isinstance(problem, AuthError) or response.status_code in (401, 403) and problem is None:
                    raise problem or AuthError(
                        f"{self.source}: {shown} refused the credential (HTTP {response.status_code})"
                    )
                retryable = isinstance(problem, TransientError) or response.status_code in RETRYABLE_STATUS
                if not retryable:
                    raise problem or ContractError(
                        f"{self.source}: {shown} answered HTTP {response.status_code}"
                    )
                retry_after = _retry_after(response)
                last_problem = f"HTTP {response.status_code}"
            if attempt == self.policy.max_attempts:
                break
            delay = self.policy.backoff(attempt, retry_after)
            self.retries += 1
            log.warning(
                "%s: %s %s failed with %s; retry %d/%d in %.1fs",
                self.source,
                method,
                shown,
                last_problem,
                attempt,
                self.policy.max_attempts - 1,
                delay,
            )
            self.policy.sleep(delay)
        raise TransientError(
            f"{self.source}: {method} {shown} still failing after {self.policy.max_attempts} "
            f"attempts ({last_problem})"
        )

    def close(self) -> None:
        self.session.close()


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
