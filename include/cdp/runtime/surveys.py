"""The Airflow side of the survey hand-over (issue 18, part 2): the tool's connection and the segment folder
from the run's params, and a setting that is missing fails the task at once with its name (no retries: retrying
cannot add a setting). A vendor error fails the try after the invitations were recorded failed with the reason;
the task's retry (or the next run) hands them over again."""

from __future__ import annotations

from typing import Any

from cdp.runtime.context import actor_of, warehouse_url


def hand_over_task(params: dict[str, Any], ti: Any) -> dict[str, Any]:
    from airflow.sdk.exceptions import AirflowFailException, AirflowNotFoundException

    from cdp.runtime import source_settings
    from cdp.runtime.params import report_param
    from cdp.surveys.handover import HandoverConfigError, hand_over, inviter_for

    tool = params["tool"]
    try:
        settings = source_settings(tool)
    except AirflowNotFoundException as error:
        raise AirflowFailException(
            f"no Airflow connection {tool!r}: the hand-over to {tool} needs it (see cdp/sources/{tool}/SETUP.md, "
            "'Inviting the sample')"
        ) from error
    folder = params.get("segment_dir")
    segment_dir = report_param(folder, parameter="segment_dir") if folder else None
    try:
        # The settings are checked before the warehouse is reached: a missing one fails at once, naming it.
        inviter = inviter_for(tool, settings, segment_dir=segment_dir)
    except HandoverConfigError as error:
        raise AirflowFailException(str(error)) from error
    result = hand_over(
        warehouse_url(ti.dag_id), actor=actor_of(ti), tool=tool, settings=settings,
        survey_key=params["survey_key"], run_id=ti.run_id, inviter=inviter,
    )  # fmt: skip
    return result.as_dict()
