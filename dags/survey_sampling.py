"""
# Weekly survey sample of course completers (`survey_sampling`)

**What it does.** Every Monday it draws a reproducible random sample (default 10%, param `fraction`) of the
learners who completed a course in the ISO week before (Monday to Sunday, UTC), stratified by course so
small courses get their share, and records each invitation once in `ops.survey_invitation` before anything
is handed to a survey tool. Only people in `mart.outreach_eligible` for the purpose `surveys` are drawn (no
minor without verified parental consent; unknown age counts as a minor), and nobody invited by any survey or
tool within the quiet period (param `quiet_days`, default 90). The draw is `ops.draw_survey_sample`, a
definer function: same week and survey, same seed, same people.

**Hand-over** (`hand_over`, after the draw): every recorded invitation of the survey and tool not handed over yet
(and every one that failed before) goes to the organisation's tool, the tool and its survey/form from the
connection named like the tool (`surveymonkey`: extras `survey_id`, `invitation_field`; `typeform`: `form_id`,
`form_host`; `zigpoll`: `survey_page_url`; each SETUP.md, "Inviting the sample"). SurveyMonkey gets a contact list
and an email collector's invite message and sends it; Typeform and Zigpoll get a prefilled link per invitation
(its id in the hidden field / metadata `invitation_id`), written as a segment CSV (mode 0600) under param
`segment_dir` (a report folder; default `.cdp/survey-segments`) for the e-mail or CRM tool to send. Consent is
checked again at hand-over: whoever left the outreach list since the draw is recorded `not_eligible`, not asked.
Each outcome is in `ops.survey_handover` (one row per invitation) and `ops.survey_handover_attempt`.

**Reads** `core.course_completion`, `mart.outreach_eligible` (inside the functions), the survey marts;
**writes** `ops.survey_draw`, `ops.survey_invitation`, `ops.survey_handover(_attempt)` (through definer functions),
one audit event per week drawn, `ops.alert_state`.

**An alert from it means** either a week had completions but nobody could be sampled (`survey_sample_empty`:
check the surveys consent coverage on the data-health page and the quiet period), or a tool's invitations of
the week judged (two weeks before the newest week drawn, param `response_weeks`) were answered below the
threshold (`survey_response_rate`, param `min_response_rate`): check the tool's delivery and the hidden
field `invitation_id` that links answers back.

**Re-run / backfill.** A week is drawn once per survey: re-running it returns the same sample and invites
nobody new; an invitation handed over is never handed over again, a failed one is retried by the next run, and one
left `sending` (the tool was asked to send, the answer never came) waits for a person: check the tool, then record
it with `ops.record_survey_handover` (as an admin).
Backfill past weeks with params `week` (first Monday, or `YYYY-Www`) and `through_week`: the weeks
are drawn oldest first in one run. An `airflow backfill create` also works (one week per run, in order,
`max_active_runs=1`). A week drawn after later weeks leaves out people already invited in the weeks around
it within the quiet period, and anyone invited in the last `quiet_days` days: it can come out smaller than
it would have on time, never inviting anybody twice.
"""

from __future__ import annotations

from airflow.sdk import Param, dag, task

from cdp.runtime import after_first_sync, default_args, run_failure_notifier, source_pool

WEEK_PATTERN = r"^(\d{4}-\d{2}-\d{2}|\d{4}-W\d{2})$"


@dag(
    # 06:00 UTC every Monday: the week that ended at midnight; after a fresh start, once the first complete
    # cdp_sync has landed (cdp.runtime.after_first_sync).
    schedule=after_first_sync("0 6 * * 1"),
    start_date=None,
    catchup=False,
    max_active_runs=1,
    tags=["surveys"],
    default_args=default_args(retries=2, after_first_sync=True),
    on_failure_callback=run_failure_notifier(),
    params={
        "survey_key": Param(
            "completer-satisfaction",
            type="string",
            pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$",
            description="The survey the sample is for",
        ),
        "tool": Param(
            "typeform", enum=["typeform", "surveymonkey", "zigpoll"], description="The survey tool"
        ),
        "fraction": Param(0.10, type="number", exclusiveMinimum=0, maximum=1, description="Share sampled"),
        "quiet_days": Param(90, type="integer", minimum=0, description="Days nobody is asked twice"),
        "week": Param(
            None,
            type=["null", "string"],
            pattern=WEEK_PATTERN,
            description="Monday (YYYY-MM-DD) or YYYY-Www to draw; default the week before the run",
        ),
        "through_week": Param(
            None,
            type=["null", "string"],
            pattern=WEEK_PATTERN,
            description="Backfill: draw every week from `week` through this one, oldest first",
        ),
        "min_response_rate": Param(
            0.15, type="number", minimum=0, maximum=1, description="Alert below this response rate"
        ),
        "segment_dir": Param(
            None,
            type=["null", "string"],
            description="Typeform/Zigpoll: the folder (a report folder) the invitation segment CSV is written to",
        ),
        "response_weeks": Param(
            2,
            type="integer",
            minimum=0,
            description="Weeks invitations have to be answered before the rate is judged",
        ),
    },  # fmt: skip
    doc_md=__doc__,
)
def survey_sampling() -> None:
    @task
    def draw(params: dict | None = None, ti=None, logical_date=None) -> list[dict[str, object]]:
        """The week (or the backfill's weeks, oldest first), drawn once each."""
        from cdp.runtime import actor_of, warehouse_url
        from cdp.surveys.sampling import draw_weeks, parse_week, previous_week, weeks_between

        first = parse_week(params["week"]) if params.get("week") else previous_week(logical_date)
        last = parse_week(params["through_week"]) if params.get("through_week") else first
        samples = draw_weeks(
            warehouse_url(ti.dag_id), weeks_between(first, last), actor=actor_of(ti),
            survey_key=params["survey_key"], tool=params["tool"], fraction=float(params["fraction"]),
            quiet_days=int(params["quiet_days"]), run_id=ti.run_id,
        )  # fmt: skip
        return [sample.as_dict() for sample in samples]

    @task
    def alert(samples: list[dict[str, object]], params: dict | None = None, ti=None) -> bool:
        """One grouped data alert: empty samples, and a response rate below the threshold."""
        from cdp.runtime import actor_of, data_alert_sender, warehouse_url
        from cdp.surveys.alerts import survey_alert

        outcome = survey_alert(
            warehouse_url(ti.dag_id), samples, run_id=ti.run_id, send=data_alert_sender(), actor=actor_of(ti),
            min_rate=float(params["min_response_rate"]), response_weeks=int(params["response_weeks"]),
        )  # fmt: skip
        return outcome.sent

    # In SurveyMonkey's pool: the one tool whose hand-over calls an API (six requests of its 500 a day); the
    # Typeform and Zigpoll hand-overs write a file and wait at most for one SurveyMonkey call.
    @task(pool=source_pool("surveymonkey"))
    def hand_over(samples: list[dict[str, object]], params: dict | None = None, ti=None) -> dict[str, object]:
        """Each recorded invitation not handed over yet, to the organisation's survey tool; outcomes recorded."""
        from cdp.runtime.surveys import hand_over_task

        return hand_over_task(params, ti)

    samples = draw()
    alert(samples)
    hand_over(samples)


survey_sampling()
