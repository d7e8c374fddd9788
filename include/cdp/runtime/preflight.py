"""The preflight: what must hold before Airflow runs the DAGs in production, checked in one command.

``python -m cdp.runtime.preflight`` (docker-compose's airflow-init runs it after the migrations) checks
that alerts can be sent (the ``slack_alerts`` connection exists and its webhook answers, probed without
posting; ``cdp.runtime.alerts.check_alert_connection``) and that the warehouse is reachable and at the
schema the code expects. It prints one line per check and exits 1 when any fails, so a deployment with a
missing or broken alert connection stops loudly at start instead of losing its first alert.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def _alerts() -> str:
    from cdp.runtime import SLACK_CONN_ID
    from cdp.runtime.alerts import check_alert_connection

    return check_alert_connection(SLACK_CONN_ID)


def _warehouse() -> str:
    from cdp.runtime import warehouse_url
    from cdp.warehouse import migrations

    url = warehouse_url()
    current, expected = migrations.current_revision(url), migrations.head_revision(url)
    if current != expected:
        raise RuntimeError(f"schema at {current or 'nothing'}, code expects {expected}: run `cdp migrate`")
    return f"reachable, schema at {current}"


CHECKS: dict[str, Callable[[], str]] = {"alerts": _alerts, "warehouse": _warehouse}


def run_checks(names: Sequence[str] | None = None) -> list[Check]:
    results = []
    for name in names or list(CHECKS):
        try:
            results.append(Check(name, True, CHECKS[name]()))
        except Exception as error:  # every check is reported, not only the first that fails
            results.append(Check(name, False, f"{type(error).__name__}: {error}"))
    return results


def main(argv: Sequence[str] | None = None) -> int:
    names = list(sys.argv[1:] if argv is None else argv) or None
    unknown = sorted(set(names or ()) - set(CHECKS))
    if unknown:
        print(
            f"error: unknown check(s) {', '.join(unknown)}; choose from {', '.join(CHECKS)}", file=sys.stderr
        )
        return 2
    results = run_checks(names)
    for check in results:
        print(
            f"{'ok  ' if check.ok else 'FAIL'} {check.name}: {check.detail}",
            file=sys.stdout if check.ok else sys.stderr,
        )
    return 0 if all(check.ok for check in results) else 1


if __name__ == "__main__":
    sys.exit(main())
