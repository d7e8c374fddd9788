"""Shared plumbing of the vendors' ``check.py`` (``cdp sources check``): one quick, unretried call at a time,
whose failure becomes a ``Finding`` naming the SETUP.md step that fixes it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from cdp.sources.base import AuthError, SourceError, SourceSettings, TransientError
from cdp.sources.check import UNCHECKED, Finding

QUICK = {"max_attempts": 1, "retry_base_delay": 0.0, "timeout": 15}


def quick(settings: SourceSettings) -> SourceSettings:
    """The same settings with one attempt per call: a preflight reports, it does not wait out outages."""
    return replace(settings, extra={**settings.extra, **QUICK})


def probe(
    findings: list[Finding],
    source: str,
    item: str,
    setup_step: str,
    call: Callable[[], Any],
    auth_step: str = "SETUP.md step 1: the credential",
) -> tuple[bool, Any]:
    """Run ``call``; a refused credential or any source error becomes a finding. (ok, what it returned)."""
    try:
        return True, call()
    except AuthError as error:
        findings.append(Finding(source, "credential", str(error), auth_step))
    except TransientError as error:  # a 5xx or a rate limit says nothing about the setup
        findings.append(Finding(source, item, f"{UNCHECKED}: {error}", setup_step, "warning"))
    except SourceError as error:
        findings.append(Finding(source, item, str(error), setup_step))
    return False, None
