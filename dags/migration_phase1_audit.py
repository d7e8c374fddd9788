"""
# Migration phase 1: legacy data audit and cleanup (`migration_phase1_audit`)

**What it does.** Run by hand, once the legacy systems have exported their data into one folder: the LMS
(`lms_learners.csv`, `lms_enrollments.csv`), the CRM export (`crm_contacts.csv`), the donor spreadsheet
(`donors.xlsx`) and the referral spreadsheet (`referrals_2023.xlsx`, `referrals_2024.csv`).
1. `import_exports` lands every row of every file in `raw.records` (source `legacy`) exactly as read; a
   row that cannot be parsed is kept with its reason. The same file content again lands nothing.
2. `profile_before` measures completeness per field, values breaking each rule (missing required fields,
   invalid emails, dates, amounts, phones), exact duplicates, orphans (enrollments whose learner the LMS
   export lacks), conflicting ids (a CRM contact whose LMS id names a learner with another email) and the
   **data accuracy rate** (share of records without errors).
3. `clean_up` fixes what is safe (emails trimmed and lower-cased, phones in E.164, dates as ISO, exact
   duplicates set aside; one audit event per export's batch, with counts and row ids) and queues the rest
   in `ops.legacy_review` with the reason; then profiles the cleaned records again.
4. `load_core` loads the cleaned records into core through the sync's person resolution (source identity,
   else the exact key normalised email + given name, else a new person; legacy values only fill what core
   lacks): learners (source `legacy_lms`), CRM contacts (`legacy_crm`), donors (`legacy_donors`, gifts in
   `core.donation` as exact integer minor units with currency), enrollments (`legacy_lms`). A row waiting
   in `ops.legacy_review` or set aside as a duplicate is never loaded; a row that cannot be loaded (an
   enrollment whose learner waits for review, an amount not exact in its currency) is kept in
   `ops.quarantine` (source `legacy`) with the reason. One `import` audit event per export that changed
   core (entity `legacy_core.<export>`). Once reviewed rows are corrected in a new export, re-run the DAG.
5. `write_report` writes `legacy_audit_<fingerprint>.html` (charts) and `.json` to the reports folder.
6. `check_accuracy_target` fails the run when the accuracy after cleanup is not above the target (98%).

**Params.** `folder` (the exports; empty = Airflow Variable `legacy_exports_folder`, else
`.cdp/legacy-exports`), `reports_folder` (empty = `.cdp/reports`), `accuracy_target` (0.98). For a
sandbox run, write the files with `cdp sandbox legacy-exports --out .cdp/legacy-exports`. The export
folder must lie inside the `CDP_IMPORT_FOLDERS` setting's folders (default `.cdp/imports`,
`.cdp/legacy-exports`) and the reports folder inside `CDP_REPORT_FOLDERS`'s (default `.cdp/reports`),
symlinks and `..` resolved; otherwise the run fails before reading or writing anything.

**Reads** the export folder. **Writes** `raw.legacy_file`, `raw.records`, `ops.legacy_profile(_metric)`,
`ops.legacy_clean_record`, `ops.legacy_review`, `core.person`, `core.person_source_id`, `core.course`,
`core.enrollment`, `core.donation`, `ops.quarantine`, `audit.audit_events`, the report files.

**An alert from it means** a task failed after its retries: `LegacyFormatError` (a file's header is not
the export it is named after: nothing of it landed; fix or rename the file and re-run), or
`LegacyAccuracyBelowTarget` (after the safe fixes, too many records still have errors: the report and
`ops.legacy_review` say which; people decide, the legacy system is corrected, a new export is run).

**Re-run.** Safe at any time: the same files change nothing (no rows, fixes, queue entries or audit
events are added); a changed file is a new content and is landed and profiled as such. No schedule, no
backfill.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task

from cdp.runtime import default_args, run_failure_notifier


def _files(found: list[dict]) -> list:
    from cdp.migration.legacy_import import LegacyFile

    return [LegacyFile(**entry) for entry in found]


@dag(
    schedule=None,  # manual: run when the legacy exports are in the folder
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["migration"],
    params={
        "folder": Param("", type="string", description="folder holding the legacy export files"),
        "reports_folder": Param("", type="string", description="where the audit report is written"),
        "accuracy_target": Param(0.98, type="number", minimum=0, maximum=1),
    },
    default_args=default_args(retries=2),
    on_failure_callback=run_failure_notifier(),
    doc_md=__doc__,
)
def migration_phase1_audit() -> None:
    @task
    def import_exports(params: dict | None = None, ti=None) -> list[dict]:
        from dataclasses import asdict

        from airflow.sdk import Variable

        from cdp.migration.legacy_import import import_exports as land
        from cdp.paths import state_dir
        from cdp.runtime import actor_of, warehouse_url
        from cdp.runtime.params import import_param

        folder = params.get("folder") or Variable.get(
            "legacy_exports_folder", default=str(state_dir() / "legacy-exports")
        )
        folder = import_param(folder, parameter="folder")  # only inside CDP_IMPORT_FOLDERS
        found = land(warehouse_url(), actor_of(ti), ti.run_id, folder)
        return [asdict(file) for file in found]

    @task
    def profile_before(found: list[dict], ti=None) -> dict[str, object]:
        from cdp.migration.legacy_profile import profile
        from cdp.runtime import actor_of, warehouse_url

        result = profile(warehouse_url(), actor_of(ti), ti.run_id, _files(found))
        return {
            "records": result.records,
            "with_errors": result.records_with_errors,
            "accuracy": result.accuracy_rate,
        }

    @task
    def clean_up(found: list[dict], ti=None) -> dict[str, object]:
        from cdp.migration.legacy_cleanup import cleanup
        from cdp.runtime import actor_of, warehouse_url

        result = cleanup(warehouse_url(), actor_of(ti), ti.run_id, _files(found))
        return {"changed_rows": result.changed_rows, "accuracy_after": result.after.accuracy_rate}

    @task
    def load_core(found: list[dict], ti=None) -> dict[str, object]:
        """The cleaned rows (never a queued one) into core, by the sync's person resolution."""
        from cdp.migration.legacy_load import load_core as load
        from cdp.runtime import actor_of, warehouse_url

        result = load(warehouse_url(), actor_of(ti), ti.run_id, _files(found))
        return {"loaded": result.loaded, "changed": result.changed, "rejected": result.rejected}

    @task
    def write_report(found: list[dict], params: dict | None = None) -> list[str]:
        from cdp.migration.audit_report import write_report as write
        from cdp.migration.legacy_profile import stored_profiles
        from cdp.paths import state_dir
        from cdp.runtime import warehouse_url
        from cdp.runtime.params import report_param

        folder = report_param(
            params.get("reports_folder") or str(state_dir() / "reports"), parameter="reports_folder"
        )
        paths = write(
            folder, stored_profiles(warehouse_url(), _files(found)), float(params["accuracy_target"])
        )
        return [str(path) for path in paths]

    @task
    def check_accuracy_target(found: list[dict], params: dict | None = None) -> None:
        from cdp.migration.legacy_profile import check_target, stored_profiles
        from cdp.runtime import warehouse_url

        check_target(stored_profiles(warehouse_url(), _files(found)), float(params["accuracy_target"]))

    found = import_exports()
    cleaned = profile_before(found) >> clean_up(found)
    cleaned >> load_core(found) >> write_report(found) >> check_accuracy_target(found)


migration_phase1_audit()
