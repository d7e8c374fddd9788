"""SurveyMonkey connector: one survey's responses, made readable, and the address book's contacts with consent.

Vendor docs followed: SurveyMonkey's API v3 reference (https://api.surveymonkey.com/v3/docs; its source is
SurveyMonkey/public_api_docs, kept under tests/vendor_material/surveymonkey/). Auth: an OAuth bearer token
(a private app's access token, or one from the OAuth flow). Lists page with ``page``/``per_page`` and
answer ``{"data", "per_page", "page", "total", "links": {"self", "next", ...}}``; this client follows
``links.next`` until there is none.

Streams:
- ``responses``: ``GET /surveys/{id}/responses/bulk`` with ``start_modified_at``/``end_modified_at``,
  ``sort_by=date_modified``, ``sort_order=ASC`` and ``per_page`` up to 100: every response created or
  changed in the window. Answers name ids only, so each record carries, besides the response as received,
  ``survey_questions``: the heading, family and choice/row/other texts of the questions it answers, from
  ``GET /surveys/{id}/details`` (read once per run), and ``recipient``: the email collector's recipient
  named by ``recipient_id`` (from ``GET /collectors/{id}/recipients``, read once per collector and run;
  None for a web link response). The recipient's email links the response to the contact.
- ``contacts``: ``GET /contacts/bulk`` (all fields, custom fields included), read in full every run
  (a contact has no modification time), for ``status=active`` and ``status=optout`` (the default is active
  only: a contact who opts out of SurveyMonkey's invitations would otherwise vanish). Each record is the
  contact as received plus ``list_status`` (which of the two lists it came from) and ``consent_field``
  (``{"id", "label"}``: the custom field that holds consent in this organisation, ``extra["consent_field"]``,
  its id ``"1"``..``"6"`` or its label, resolved through ``GET /contact_fields``).

Assumed where the reference is silent: whether ``start_modified_at``/``end_modified_at`` are inclusive (the
connector filters the window itself); that page-number paging sorted by ``date_modified`` does not skip a
response edited while a run pages (the next run's overlap window reads it again).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from cdp.sources.base import (
    AuthError,
    ContractError,
    RateLimitExhausted,
    SourceSettings,
    Stream,
    check_contract,
    in_window,
    iso_utc,
    parse_timestamp,
    to_utc,
)
from cdp.sources.http import HttpClient

SOURCE = "surveymonkey"
RESPONSE_FIELDS = (
    "id",
    "survey_id",
    "collector_id",
    "date_created",
    "date_modified",
    "response_status",
    "pages",
)
CONTACT_FIELDS = ("id", "custom_fields")
CONTACT_LISTS = ("active", "optout")  # the lists /contacts/bulk is read from (status=...)
MAX_RESPONSES_PAGE = 100  # "Max of 100 allowed per page" for /responses/bulk
MAX_PAGE = 1000  # "Max Page Size: 1000 resources, unless otherwise specified"


def _classify(response: Any) -> Exception | None:
    """SurveyMonkey's errors: 401 (1010-1013) a refused token, 403 (1014-1018) a missing scope or plan; a
    429 with no requests left today is the daily quota (500 for private apps), not worth retrying."""
    if response.status_code in (401, 403):
        return AuthError(
            f"surveymonkey: access token refused (HTTP {response.status_code}{_error_name(response)})"
        )
    if response.status_code == 429 and response.headers.get("X-Ratelimit-App-Global-Day-Remaining") == "0":
        return RateLimitExhausted(
            "surveymonkey: the app's daily request limit is used up (resets at 00:00 GMT)"
        )
    if response.status_code in (400, 404):
        return ContractError(
            f"surveymonkey: request rejected (HTTP {response.status_code}{_error_name(response)})"
        )
    return None


def _error_name(response: Any) -> str:
    try:
        error = response.json()["error"]
        return f", error {error['id']} {error['name']}"
    except (ValueError, KeyError, TypeError):
        return ""


def sm_time(moment: datetime) -> str:
    """A SurveyMonkey date string: YYYY-MM-DDTHH:MM:SS, implicitly UTC."""
    return to_utc(moment).strftime("%Y-%m-%dT%H:%M:%S")


class SurveyMonkeyClient:
    def __init__(self, settings: SourceSettings) -> None:
        self.survey_id = str(settings.extra.get("survey_id") or "")
        self.reported_total: int | None = None  # the "total" of the list pages() last walked
        self.consent_field = str(settings.extra.get("consent_field") or "")
        self.page_size = max(
            1, min(MAX_RESPONSES_PAGE, int(settings.extra.get("page_size", MAX_RESPONSES_PAGE)))
        )
        self.http = HttpClient(
            SOURCE, settings, classify=_classify, headers={"Authorization": f"Bearer {settings.credential}"}
        )

    def get(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        body = self.http.get_json(path, params=params)
        if not isinstance(body, dict):
            raise ContractError(f"surveymonkey: {path} answered {type(body).__name__}, not an object")
        return body

    def pages(self, path: str, params: dict[str, Any]) -> Iterator[list[dict]]:
        """Every page of a list resource, following links.next."""
        url, query = path, dict(params)
        self.reported_total = None
        while True:
            body = self.get(url, query)
            if not isinstance(body.get("data"), list):
                raise ContractError(f"surveymonkey: {path} answered a list without data")
            if self.reported_total is None and isinstance(body.get("total"), int):
                self.reported_total = body["total"]  # the first page's "total": what the whole list holds
            yield body["data"]
            following = (body.get("links") or {}).get("next")
            if not following or not body["data"]:
                return
            url, query = following, None  # links.next carries the query (page, per_page, filters)

    def require_survey(self) -> str:
        if not self.survey_id:
            raise ValueError("surveymonkey settings need extra['survey_id']")
        return self.survey_id

    def questions(self) -> dict[str, dict[str, Any]]:
        """Question id -> heading, family, subtype and the texts of its choices, rows and other options."""
        details = self.get(f"/surveys/{self.require_survey()}/details")
        if not isinstance(details.get("pages"), list):
            raise ContractError("surveymonkey: survey details without pages")
        questions: dict[str, dict[str, Any]] = {}
        for page in details["pages"]:
            for question in page.get("questions") or ():
                answers = question.get("answers") or {}
                headings = question.get("headings") or [{}]
                questions[str(question["id"])] = {
                    "heading": headings[0].get("heading"),
                    "family": question.get("family"),
                    "subtype": question.get("subtype"),
                    **{
                        part: {str(o["id"]): o.get("text") for o in answers.get(part) or () if "id" in o}
                        for part in ("choices", "rows", "cols", "other")
                    },
                }
        return questions

    def consent_field_of(self) -> dict[str, str]:
        """The configured consent custom field as {"id", "label"}; an error naming the known ones if absent."""
        if not self.consent_field:
            raise ValueError("surveymonkey settings need extra['consent_field'] (a contact custom field)")
        fields = [f for page in self.pages("/contact_fields", {"per_page": MAX_PAGE}) for f in page]
        for candidate in fields:
            if self.consent_field in (str(candidate.get("id")), candidate.get("label")):
                return {"id": str(candidate["id"]), "label": candidate.get("label")}
        known = ", ".join(f"{f.get('id')} ({f.get('label')})" for f in fields)
        raise ContractError(
            f"surveymonkey: consent field {self.consent_field!r} is not a contact custom field (have {known})"
        )


class ResponsesStream:
    source, name, primary_key, cursor_field = SOURCE, "responses", "id", "date_modified"
    required_fields = RESPONSE_FIELDS

    def __init__(self, client: SurveyMonkeyClient, reconcile_deletions: bool = True) -> None:
        self.client = client
        # A periodic id reconciliation finds responses deleted in SurveyMonkey (``_list_every_response``).
        self.reconcile_deletions = reconcile_deletions
        self.listed_ids: set[str] | None = None
        self.sql_params: dict[str, str] = {}

    def _params(self, since: datetime | None, until: datetime | None, per_page: int) -> dict[str, Any]:
        params: dict[str, Any] = {"per_page": per_page, "sort_by": "date_modified", "sort_order": "ASC"}
        if since is not None:
            params["start_modified_at"] = sm_time(since)
        if until is not None:
            params["end_modified_at"] = sm_time(until)
        return params

    def read(self, since: datetime | None, until: datetime | None) -> Iterator[list[dict]]:
        self.listed_ids, self.sql_params = None, {}
        path = f"/surveys/{self.client.require_survey()}/responses/bulk"
        questions: dict[str, dict[str, Any]] | None = None
        recipients: dict[str, dict[str, dict]] = {}
        for data in self.client.pages(path, self._params(since, until, self.client.page_size)):
            check_contract(SOURCE, self.name, data, self.required_fields)
            page = [r for r in data if in_window(parse_timestamp(r["date_modified"]), since, until)]
            if not page:
                continue
            if questions is None:
                questions = self.client.questions()
            yield [self._side_load(response, questions, recipients) for response in page]
        if self.reconcile_deletions:
            self._list_every_response()

    def _list_every_response(self) -> None:
        """Bulk responses by modification time cannot show a deletion: a response deleted in SurveyMonkey is
        simply no longer listed. So after each read every response id of the survey is listed through the
        documented ``GET /surveys/{id}/responses`` (ids and hrefs only, 1000 a page) and kept in
        ``listed_ids`` when the walk saw as many distinct ids as the first page's ``total``; the shared
        sql/sync/_survey_responses_removed.sql marks the responses core holds that are no longer listed.
        Responses modified after the walk began are not judged."""
        began = datetime.now(UTC)
        survey = self.client.require_survey()
        seen = {
            str(r["id"])
            for page in self.client.pages(f"/surveys/{survey}/responses", {"per_page": MAX_PAGE})
            for r in page
            if isinstance(r, dict) and r.get("id") is not None
        }
        total = self.client.reported_total
        if isinstance(total, int) and len(seen) >= total:
            self.listed_ids = seen
            self.sql_params = {"listing_survey_id": survey, "listing_settled_before": iso_utc(began)}

    def _side_load(
        self, response: dict, questions: dict[str, dict[str, Any]], recipients: dict[str, dict[str, dict]]
    ) -> dict:
        answered = {str(q.get("id")) for p in response["pages"] or () for q in p.get("questions") or ()}
        recipient = None
        recipient_id = str(response.get("recipient_id") or "")
        if recipient_id not in ("", "0"):
            collector = str(response["collector_id"])
            if collector not in recipients:
                recipients[collector] = {
                    str(r["id"]): r
                    for page in self.client.pages(
                        f"/collectors/{collector}/recipients", {"per_page": MAX_PAGE}
                    )
                    for r in page
                }
            recipient = recipients[collector].get(recipient_id)
        return {
            **response,
            "survey_questions": {qid: questions[qid] for qid in sorted(answered) if qid in questions},
            "recipient": recipient,
        }

    def count(self, since: datetime, until: datetime) -> int:
        body = self.client.get(
            f"/surveys/{self.client.require_survey()}/responses/bulk", self._params(since, until, 1)
        )
        if not isinstance(body.get("total"), int):
            raise ContractError("surveymonkey: responses answer without a total")
        return body["total"]


class ContactsStream:
    """The address book, read in full: SurveyMonkey keeps no creation or modification time on a contact."""

    source, name, primary_key, cursor_field = SOURCE, "contacts", "id", None
    required_fields = CONTACT_FIELDS

    def __init__(self, client: SurveyMonkeyClient) -> None:
        self.client = client

    def read(self, since: datetime | None, until: datetime | None) -> Iterator[list[dict]]:
        consent_field = self.client.consent_field_of()
        for status in CONTACT_LISTS:
            for data in self.client.pages("/contacts/bulk", {"status": status, "per_page": MAX_PAGE}):
                check_contract(SOURCE, self.name, data, self.required_fields)
                if data:
                    yield [
                        {**contact, "list_status": status, "consent_field": consent_field} for contact in data
                    ]

    def count(self, since: datetime, until: datetime) -> int:
        """Nothing: SurveyMonkey keeps no time on a contact, so it cannot say how many changed in a window
        (the count diff records the stream as empty). The full read's own total is its rows_read."""
        return 0


def streams(settings: SourceSettings) -> list[Stream]:
    client = SurveyMonkeyClient(settings)
    reconcile = bool(settings.extra.get("reconcile_deletions", True))
    return [ContactsStream(client), ResponsesStream(client, reconcile_deletions=reconcile)]
