"""Every alert the project can send, by stable key: the list the README runbook is checked against.

Three ways a message reaches Slack (``slack_alerts`` connection):

- ``run_failed``: one message per failed DAG run (``cdp.runtime.alerts.RunFailureNotifier``), naming DAG, task,
  run, the error's last lines and the log link. The error's class says what happened: each class that
  can end a task is listed below as ``error:<ClassName>``.
- ``deadline_missed``: an Airflow DeadlineAlert (``cdp.runtime.sync_deadline``).
- data alerts (``cdp.quality.data_alerts.alert_once``): one grouped message per run, one line per finding
  whose key starts with the kind's prefix (``count_diff:moodle.users``, ``reconcile:2026-10``).

Adding a kind is one line here and one entry in the README's "Runbook" section;
``tests/test_alert_catalog.py`` fails until both exist and the code really sends it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AlertKind:
    key: str  # stable: a data alert's finding-key prefix, "run_failed", "deadline_missed", or "error:<Class>"
    title: str
    sent_by: str  # the DAG(s) or component that sends it


_KINDS = (
    AlertKind("run_failed", "A DAG run failed after its last retry", "every DAG"),
    AlertKind("deadline_missed", "A sync run has not finished within 2 hours of being queued", "cdp_sync"),
    AlertKind("count_diff", "Source and warehouse counts differ beyond the threshold", "cdp_count_diff"),
    AlertKind("quarantine", "Records rejected into ops.quarantine", "cdp_count_diff"),
    AlertKind("reconcile", "A month's donations do not reconcile with Stripe and the ledger", "cdp_reconcile"),
    AlertKind("dedupe_spike", "The duplicate rate of a dedupe run jumped against recent runs", "cdp_dedupe"),
    AlertKind("crm_push", "The CRM push did not reconcile, or waits on staff conflicts or refused records",
              "migration_phase2_lms_crm"),
    AlertKind("referral_outage", "No referrals tracked for hours while sign-ups continue", "referral_migration"),
    AlertKind("survey_sample_empty", "A week had course completions but nobody in its survey sample",
              "survey_sampling"),
    AlertKind("survey_response_rate", "A survey tool's invitations were answered below the threshold",
              "survey_sampling"),
    AlertKind("webhook_undeliverable", "Signed webhook deliveries acknowledged but not landed: kept as bytes",
              "cdp_webhook_intake"),
    AlertKind("error:StreamsFailed", "One or more streams did not land this sync run", "cdp_sync"),
    AlertKind("error:AuthError", "A source refused the connection's credential", "cdp_sync, cdp_count_diff"),
    AlertKind("error:TransientError", "A source stayed down or kept failing after retries", "cdp_sync, cdp_count_diff"),
    AlertKind("error:RateLimitExhausted", "A source's API request budget is used up", "cdp_sync, cdp_count_diff"),
    AlertKind("error:ContractError", "A source changed a field or the shape of its answer", "cdp_sync, cdp_count_diff"),
    AlertKind("error:DuplicateRateSpike", "The dedupe run's duplicate rate jumped", "cdp_dedupe"),
    AlertKind("error:DedupeError", "The dedupe run could not proceed", "cdp_dedupe"),
    AlertKind("error:SchemaOutOfDate", "The warehouse schema is behind the code", "cdp_health"),
    AlertKind("error:AuditChainBroken", "The audit hash chain does not verify", "cdp_health, cdp_evidence"),
    AlertKind("error:WebhookBacklog", "Landed webhook events wait unprocessed", "cdp_webhook_intake"),
    AlertKind("error:PushRoleError", "The warehouse login may not act as cdp_outreach for the CRM push",
              "migration_phase2_lms_crm, migration_phase3_completion_triggers"),
    AlertKind("error:PushNotReconciled", "What the CRM accepted does not add up to what was pushed",
              "migration_phase2_lms_crm"),
    AlertKind("error:LegacyFormatError", "A legacy export file is not the export it is named after",
              "migration_phase1_audit"),
    AlertKind("error:LegacyAccuracyBelowTarget", "Legacy data accuracy after cleanup is not above the target",
              "migration_phase1_audit"),
    AlertKind("error:PhaseCheckFailed", "A phase-4 success criterion does not hold", "migration_phase4_platforms"),
    AlertKind("error:WarehouseNotConfigured", "No warehouse connection and no embedded server", "every DAG"),
    AlertKind("error:EmbeddedServerError", "The embedded warehouse server could not start", "every DAG (local only)"),
)  # fmt: skip

ALERTS: dict[str, AlertKind] = {kind.key: kind for kind in _KINDS}

# Error classes of the package that never end a DAG run, so never reach Slack (and why).
NOT_ALERTS: dict[str, str] = {
    "NoResults": "Galaxy's 404 for an empty listing: the connector reads it as an empty page, it never leaves a task",
    "NotFound": "a Salesforce object or field the org lacks: `cdp sources check` (cdp_sync's check_sources task) "
    "reports it as a finding with its setup step; anywhere else it is a ContractError and alerts as one",
    "PermissionDenied": "a Stripe restricted key without a read permission: an AuthError (its alert applies), which "
    "`cdp sources check` names per resource",
    "PathNotAllowed": "a DAG parameter names a file outside CDP_IMPORT_FOLDERS / CDP_REPORT_FOLDERS: the task "
    "fails at once, without retries, before reading anything, and the run's `run_failed` alert names it",
    "AlertsNotWired": "the slack_alerts connection is missing or refused: raised by the preflight (compose's "
    "airflow-init stops there) and by cdp_health's check_alerts task, whose failed run the UI shows",
    "SuperuserRefused": "the finance CLI's answer to a superuser login without --role (a clear error, exit 2)",
    "AnchorFileRefused": "the anchor file is a symlink or another user's: the hourly cdp_health run fails on it "
    "(its `run_failed` alert), and `cdp audit verify` counts the rows past the last anchor meanwhile",
    "SourceError": "base class only; its subclasses are listed",
    "SamplingError": "a survey_sampling parameter the draw cannot use (a week that is not a Monday, an end before "
    "the start): the task fails before drawing anything, and the run's `run_failed` alert names it",
    "HandoverConfigError": "a survey tool's connection lacks a setting the hand-over needs: survey_sampling's "
    "hand_over task fails at once, without retries, before reaching the warehouse, and the run's `run_failed` "
    "alert names the setting",
    "SignatureError": "a webhook request refused with 401 and counted in ops.webhook_rejection_count",
    "PayloadError": "a webhook request refused with 422 and counted in ops.webhook_rejection_count",
    "UnstorableBody": "a signed webhook body PostgreSQL cannot hold as JSON: kept in ops.webhook_undeliverable "
    "and answered 200; the `webhook_undeliverable` data alert reports it",
    "LegacyRowError": "one referral-sheet row that cannot be read: kept in ops.quarantine with its reason",
    "CertificateRefused": "one certificate request the service refused: kept with its code and retried next run",
    "PersonNotFound": "the privacy CLI's answer to an unknown person (exit code 1)",
    "DependencyError": "a stream's declared order (`after=`) names an unknown stream or makes a cycle: raised "
    "while cdp_sync is parsed, so the UI shows an import error; tests/sources catch it before a deploy",
    "DefinitionError": "raised by `cdp migrate` at deploy time (sql/definitions/ and its manifest disagree); "
    "no DAG runs migrations, so it stops the deploy, not a run",
    "DefinitionConflict": "raised by `cdp migrate` at deploy time (a view or function changed in a way CREATE OR "
    "REPLACE cannot apply); the message names the revision to write",
    "UnexplainedDifference": "raised by cdp.finance.reconcile.require_reconciled for library and CLI use; the "
    "cdp_reconcile DAG sends the `reconcile` data alert, then fails the run (`run_failed`) naming the month",
}

DATA_ALERT_PREFIXES = frozenset(
    key for key in ALERTS if ":" not in key and key not in {"run_failed", "deadline_missed"}
)


def title(key: str) -> str:
    """The title of the kind an alert key belongs to (``count_diff:moodle.users`` -> the count-diff kind)."""
    if key in ALERTS:
        return ALERTS[key].title
    prefix = key.split(":", 1)[0]
    if prefix in DATA_ALERT_PREFIXES:
        return ALERTS[prefix].title
    raise KeyError(f"no alert kind for {key!r}: add it to cdp.alert_catalog and the README runbook")
