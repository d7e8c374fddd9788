"""``cdp sources check``: every source's own setup check, run together, as one table.

Each vendor's ``cdp/sources/<vendor>/check.py`` offers ``setup_findings(settings) -> list[Finding]``
(``cdp.sources.check``). This runner calls it for every source with the settings of its connection, and
turns what cannot be checked into findings too: a vendor without ``check.py`` is "not checked" (a warning,
never "fine"), a connection that is not configured is missing, and a check that fails outright (the vendor
refused the credential, or could not be reached) is reported with its error instead of stopping the others.

It is used by the CLI (connections from ``AIRFLOW_CONN_<ID>`` variables, no Airflow needed) and by the
first task of ``cdp_sync`` (``cdp.runtime.check_sources_task``, connections from Airflow).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import import_module
from urllib.parse import parse_qsl, unquote, urlsplit

from cdp.sources.base import SourceSettings, TransientError
from cdp.sources.check import UNCHECKED, Finding
from cdp.sources.registry import SOURCES, Source

log = logging.getLogger(__name__)

NOT_CHECKED = "not checked"
SettingsLookup = Callable[[str], SourceSettings | None]  # connection id -> settings, None when not configured


@dataclass(frozen=True)
class CheckReport:
    findings: tuple[Finding, ...]
    checked: tuple[str, ...]  # sources whose own check ran
    not_checked: tuple[str, ...]  # sources without a check.py

    @property
    def missing(self) -> tuple[Finding, ...]:
        return tuple(finding for finding in self.findings if finding.severity == "missing")

    @property
    def ok(self) -> bool:
        return not self.missing

    def table(self) -> str:
        return format_table(self.findings)

    def summary(self) -> str:
        counts = {
            name: sum(1 for f in self.missing if f.source == name)
            for name in (*self.checked, *self.not_checked)
        }
        checked = ", ".join(
            f"{name} ({counts[name]} missing)" if counts[name] else f"{name} (ok)" for name in self.checked
        )
        parts = [f"checked: {checked or 'none'}"]
        if self.not_checked:
            parts.append(f"{NOT_CHECKED}: {', '.join(self.not_checked)}")
        parts.append(f"{len(self.missing)} missing, {len(self.findings) - len(self.missing)} warnings")
        return "; ".join(parts)


def vendor_check(source: Source) -> Callable[[SourceSettings], list[Finding]] | None:
    """The vendor's ``setup_findings``, or None when its folder has no ``check.py``."""
    if not (source.folder / "check.py").is_file():
        return None
    return import_module(f"cdp.sources.{source.name}.check").setup_findings


def primary_connection(source: Source) -> str:
    return source.name if source.name in source.connections else source.connections[0]


def run_checks(settings_of: SettingsLookup, sources: Iterable[Source] = SOURCES) -> CheckReport:
    findings: list[Finding] = []
    checked: list[str] = []
    not_checked: list[str] = []
    for source in sources:
        check = vendor_check(source)
        if check is None:
            not_checked.append(source.name)
            findings.append(
                Finding(
                    source.name,
                    "setup check",
                    NOT_CHECKED + f": cdp/sources/{source.name}/ has no check.py",
                    f"cdp/sources/{source.name}/SETUP.md (check by hand)",
                    "warning",
                )  # fmt: skip
            )
            continue
        conn_id = primary_connection(source)
        settings = settings_of(conn_id)
        if settings is None:
            findings.append(
                Finding(
                    source.name,
                    f"connection {conn_id}",
                    "not configured",
                    f"create the Airflow connection {conn_id} (cdp/sources/{source.name}/SETUP.md)",
                    "missing" if source.scheduled else "warning",
                )  # fmt: skip
            )
            continue
        checked.append(source.name)
        try:
            found = list(check(settings))
        except TransientError as error:  # an outage or a rate limit says nothing about the setup
            log.warning("%s: setup check could not run: %s", source.name, error)
            found = [Finding(source.name, "setup check", f"{UNCHECKED}: {error}",
                             f"cdp/sources/{source.name}/SETUP.md", "warning")]  # fmt: skip
        except Exception as error:  # noqa: BLE001 - one vendor's failure is a finding, the others still run
            log.warning("%s: setup check failed: %s", source.name, error)
            found = [
                Finding(
                    source.name,
                    "setup check",
                    f"{type(error).__name__}: {error}",
                    f"cdp/sources/{source.name}/SETUP.md: the connection",
                )  # fmt: skip
            ]
        findings.extend(found)
    return CheckReport(tuple(findings), tuple(checked), tuple(not_checked))


def format_table(findings: Sequence[Finding]) -> str:
    header = ("source", "item", "problem", "setup step")
    rows = [header] + [
        (
            f.source,
            f.item,
            f.problem if f.severity == "missing" else f"({f.severity}) {f.problem}",
            f.setup_step,
        )
        for f in findings
    ]
    widths = [min(60, max(len(row[i]) for row in rows)) for i in range(4)]
    lines = []
    for number, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if number == 0:
            lines.append("  ".join("-" * width for width in widths))
    if not findings:
        lines.append("(nothing missing)")
    return "\n".join(lines)


def settings_from_environment(environ: Mapping[str, str]) -> SettingsLookup:
    """Settings from ``AIRFLOW_CONN_<ID>`` variables (JSON or URI), as Airflow reads them, without Airflow."""

    def lookup(conn_id: str) -> SourceSettings | None:
        value = environ.get(f"AIRFLOW_CONN_{conn_id.upper()}")
        if not value:
            return None
        if value.lstrip().startswith("{"):
            spec = json.loads(value)
            host, port = str(spec.get("host") or ""), spec.get("port")
            password, extra = str(spec.get("password") or ""), spec.get("extra") or {}
            if isinstance(extra, str):
                extra = json.loads(extra)
        else:
            parts = urlsplit(value)
            query = dict(parse_qsl(parts.query))
            extra = json.loads(query["__extra__"]) if "__extra__" in query else query
            host, port, password = unquote(parts.hostname or ""), parts.port, unquote(parts.password or "")
            if parts.path.strip("/"):
                host = f"{host}{parts.path}"
        if host and "://" not in host:
            host = f"https://{host}{f':{port}' if port else ''}"
        return SourceSettings(host.rstrip("/"), password, extra)

    return lookup
