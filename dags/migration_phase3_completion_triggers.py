"""
# Migration phase 3: course completion triggers (`migration_phase3_completion_triggers`)

**What it does.** Hourly, and whenever the sync lands course completions (the Asset
`warehouse.core.course_completion`), each course completion triggers, **exactly once**:
- a **certificate request** to the certificate service, for every completion of a person who is not
  erased. No outreach consent is needed: the certificate is the service the learner enrolled for, so a minor
  or someone who refused outreach still gets theirs (it carries the name, course and date, no contact data);
- a **donor-outreach action**: the person is added to the CRM campaign `completion_campaign_id` (extra of
  the `salesforce` connection) as a `CampaignMember`, only if `mart.outreach_eligible` holds them for
  `fundraising` (read as the `cdp_outreach` role), once per person and campaign, and only once phase 2 has
  pushed their contact (until then they are counted as waiting and picked up by a later run).

**Exactly once.** `ops.completion_trigger` holds one row per trigger key, claimed and committed before the
vendor is called; the vendor gets an idempotency key derived from it (an `Idempotency-Key` header; the
CampaignMember's external id `CDP_Trigger_Key__c`). A run that crashed between the vendor's answer and our
write leaves the claim `sending`; the next run sends it again with the same key and the vendor answers
with what it did the first time. The ledger refuses DELETE.

**Reads / writes.** Reads `core.course_completion`, `core.person`, `core.course`, `mart.outreach_eligible`,
`ops.crm_push_state`; writes `ops.completion_trigger`, `audit.audit_events` (`completion_triggers`), the
certificate service and Salesforce `CampaignMember`s.

**Alerts from it.** A failed run (Slack failure alert): the certificate service or the CRM was down or
refused the credential. Clear the task: claims left `sending` are sent again, never twice. Triggers the
vendor refused stay `rejected` with the reason in `last_error` and are tried again by every run
(`SELECT * FROM ops.completion_trigger WHERE status = 'rejected'`).

**When it starts.** Not before the warehouse's first complete sync: switching it on does not run it, and a
scheduled or completion-triggered run that comes while the first sync is still landing is skipped (it did
nothing); the first complete sync (`warehouse.ready`) starts it. A manual run always runs.

**Re-run / backfill.** Safe at any time and for any period: keys already taken are never sent again. Param
`completed_since` (ISO date, default all) limits a run, e.g. at go-live, to recent completions.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task

from cdp.runtime import after_first_sync_and_on_changes, default_args, run_failure_notifier, source_pool


@dag(
    # Hourly at :40, or as soon as a sync has changed course completions (an Asset event comes only from a
    # run that changed rows), or when the first complete sync is done (warehouse.ready). Both of the first
    # two can come while the first sync is still landing: such a run skips (default_args(after_first_sync=True)).
    schedule=after_first_sync_and_on_changes("40 * * * *", "core.course_completion"),
    # No start date: with one, switching the DAG on would run its latest past cron time at once, whatever
    # run_immediately says (Airflow 3.3); the first complete sync starts it instead.
    start_date=None,
    catchup=False,
    max_active_runs=1,
    tags=["migration"],
    default_args=default_args(retries=3, after_first_sync=True),
    on_failure_callback=run_failure_notifier(),
    params={
        "completed_since": Param(
            None,
            type=["null", "string"],
            format="date",
            description="only completions on or after this date (default: all)",
        ),
    },  # fmt: skip
    doc_md=__doc__,
)
def migration_phase3_completion_triggers() -> None:
    # Calls the CRM and the certificate service: the pool is Salesforce's, the scarcer budget of the two.
    @task(pool=source_pool("salesforce"))
    def trigger_completions(params: dict | None = None, ti=None) -> dict[str, object]:
        """Claim what is due, then send every claim not yet sent, with its idempotency key."""
        from cdp.crm.client import SalesforceWriter
        from cdp.runtime import actor_of, source_settings, warehouse_url
        from cdp.triggers.certificates import CertificateClient
        from cdp.triggers.completions import run_triggers

        since = params.get("completed_since")
        crm_settings = source_settings("salesforce")
        campaign_id = crm_settings.extra.get("completion_campaign_id")
        if not campaign_id:
            raise ValueError("the salesforce connection has no completion_campaign_id in its extra")
        certificates = CertificateClient(source_settings("certificates"))
        crm = SalesforceWriter(crm_settings)
        try:
            result = run_triggers(
                warehouse_url(), certificates, crm, campaign_id=str(campaign_id), run_id=ti.run_id, actor=actor_of(ti),
                completed_since=pendulum.parse(since) if since else None,
            )  # fmt: skip
        finally:
            certificates.close()
            crm.close()
        return result.as_dict()

    trigger_completions()


migration_phase3_completion_triggers()
