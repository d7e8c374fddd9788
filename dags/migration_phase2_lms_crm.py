"""
# Migration phase 2: LMS learners into the CRM (`migration_phase2_lms_crm`)

**What it does.** Daily it pushes learner contact data from the warehouse into Salesforce: an upsert of
`Contact` by the external id `CDP_Person_Id__c` (our person id) with `FirstName`, `LastName`, `Email`,
`Phone`, `HasOptedOutOfEmail` and the consent flags `CDP_Course_Messages_Consent__c` /
`CDP_Fundraising_Consent__c`.

**Who is pushed.** Learners that `mart.outreach_eligible` holds for `course_messages` or `fundraising`
(read as the `cdp_outreach` role). A minor without verified parental consent, a person of unknown age,
anyone who refused or withdrew, and erased people are never pushed. Someone pushed before who is no longer
eligible only gets the consent flags cleared and `HasOptedOutOfEmail` set.

**Contacts staff created first.** A learner who already is a Contact in Salesforce (created by staff,
synced here by the `salesforce` contacts stream) but has no `CDP_Person_Id__c` is *linked*, not created
again: before the upsert the run sets `CDP_Person_Id__c` on that Contact by its `Id` (sObject Collections
update); from then on it is an ordinary update, and fields we do not push (account, birth date, preferred
email, ...) stay as staff left them. A learner with two or more Contacts in the CRM (a CRM duplicate), or
whose Contact carries another person's id, is not guessed at: queued in `ops.crm_contact_review` and not
pushed until staff merge the Contacts in Salesforce (the next run then links the one left and closes the
row). Links per run: `ops.crm_contact_link`; audit event `crm_contact_link_batch` per 200 links.

**Dry run first.** Param `mode`: `auto` (default) is a **dry run until a run has been applied on purpose**;
`dry_run` always plans only; `apply` pushes. A dry run reads the CRM, writes the exact field-level plan to
`ops.crm_push_change` (hashes) and the planned links to `ops.crm_contact_link`, and a CSV (link steps
first, `change = link`) with the values to `.cdp/reports/crm_push/` (operator only), and
writes nothing to the CRM. To go live: read the dry run's report, then *Trigger DAG w/ config*
`{"mode": "apply"}` once; from then on the daily runs apply.

**Staff edits win.** A CRM field changed by staff after our last push is not overwritten: it is queued in
`ops.crm_push_conflict` (who and when, from `LastModifiedById`/`LastModifiedDate`) and held until someone
decides with `cdp crm resolve CONFLICT_ID keep_crm|push_warehouse`.

**Reads / writes.** Reads `mart.outreach_eligible`, `core.person` (learner flag), `core.person_source_id`
(the Contacts synced from the CRM), `ops.crm_push_*` and the
CRM's current values; writes Salesforce `Contact`s, `ops.crm_push_state`, `ops.crm_push_run`,
`ops.crm_push_change`, `ops.crm_push_conflict`, `ops.crm_push_error`, `ops.crm_contact_link`,
`ops.crm_contact_review`, `audit.audit_events` (`crm_push_dry_run`, one `crm_contact_link_batch` per 200
links, one `crm_push_batch` per 200 records).

**Alerts from it** (grouped, sent when they change; key prefix `crm_push:`):
- `crm_push:reconcile` — sent ≠ accepted + rejected, or accepted records do not read back as sent. The run
  fails too. Compare `ops.crm_push_state` with the CRM for the run's people; re-run (it re-plans from the
  CRM's values, and a value already there is adopted, not sent again).
- `crm_push:conflicts` — staff-edited fields wait for a decision (`cdp crm conflicts`).
- `crm_push:contact_review` — learners held back because the CRM has several Contacts for them (or their
  Contact carries another person's id): merge the duplicates in Salesforce; the next run links and pushes.
- `crm_push:errors` — records the CRM refused (e.g. `REQUIRED_FIELD_MISSING` for a learner without a
  family name, `INVALID_EMAIL_ADDRESS`), kept in `ops.crm_push_error` and retried by every run: fix the
  value at the source.
- a failed run (Slack failure alert): the CRM or the warehouse was unreachable; clear the task to retry.

**Re-run / backfill.** Safe at any time: the plan compares with the CRM's current values, so a re-run sends
only what still differs. There is nothing to backfill (`catchup=False`): each run pushes the current state.
"""

from __future__ import annotations

from airflow.sdk import Param, dag, task

from cdp.runtime import after_first_sync, default_args, run_failure_notifier, source_pool


@dag(
    # Daily at 05:15 UTC, after the night's sync and dedupe; after a fresh start, first once the first
    # complete cdp_sync has landed (cdp.runtime.after_first_sync).
    schedule=after_first_sync("15 5 * * *"),
    # No start date: with one, switching the DAG on would run its latest past cron time at once, whatever
    # run_immediately says (Airflow 3.3); the first complete sync starts it instead.
    start_date=None,
    catchup=False,
    max_active_runs=1,
    tags=["migration"],
    default_args=default_args(retries=2, after_first_sync=True),
    on_failure_callback=run_failure_notifier(),
    params={
        "mode": Param(
            "auto",
            enum=["auto", "dry_run", "apply"],
            description="auto: a dry run until one run was applied; dry_run: plan only; apply: push",
        ),
    },  # fmt: skip
    doc_md=__doc__,
)
def migration_phase2_lms_crm() -> None:
    @task(pool=source_pool("salesforce"))  # writes to the CRM: shares Salesforce's API budget
    def push_contacts(params: dict | None = None, ti=None) -> dict[str, object]:
        """Plan against the CRM's current values; send only what differs and is not held."""
        from cdp.crm.client import SalesforceWriter
        from cdp.crm.push import push_contacts as run_push
        from cdp.paths import state_dir
        from cdp.runtime import actor_of, source_settings, warehouse_url

        writer = SalesforceWriter(source_settings("salesforce"))
        try:
            result = run_push(
                warehouse_url(), writer, run_id=ti.run_id, actor=actor_of(ti), mode=params["mode"],
                report_dir=state_dir() / "reports" / "crm_push",
            )  # fmt: skip
        finally:
            writer.close()
        return result.as_dict()

    @task
    def alert(result: dict[str, object], ti=None) -> bool:
        """One grouped data alert: not reconciled, conflicts waiting, records refused."""
        from cdp.crm.push import alert_push
        from cdp.runtime import actor_of, data_alert_sender, warehouse_url

        return alert_push(
            warehouse_url(), result, run_id=ti.run_id, send=data_alert_sender(), actor=actor_of(ti)
        )

    @task
    def require_reconciled(result: dict[str, object], alerted: bool) -> None:
        """Fails the run when what the CRM accepted does not add up to what was sent."""
        from cdp.crm.push import require_push_reconciled

        require_push_reconciled(result)

    result = push_contacts()
    require_reconciled(result, alert(result))


migration_phase2_lms_crm()
