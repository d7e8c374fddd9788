"""``cdp sources check``: a complete sandbox org passes, a deliberately incomplete one has every missing piece
listed with its setup step, a vendor without its own check is "not checked", and the CLI exits non-zero."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from cdp import cli
from cdp.sources.base import SourceSettings
from cdp.sources.registry import BY_NAME, Source
from cdp.sources.salesforce.check import setup_findings
from cdp.sources.setup_check import NOT_CHECKED, run_checks, settings_from_environment
from cdp_sandbox.server import SandboxServer


def test_a_complete_org_lacks_nothing(settings_for: Callable[..., SourceSettings]) -> None:
    findings = setup_findings(settings_for("salesforce"))
    assert [f for f in findings if f.severity == "missing"] == []


def test_the_sandbox_lacks_nothing_any_vendor_check_looks_for(
    settings_for: Callable[..., SourceSettings],
) -> None:
    # `make run` starts cdp_sync with check_sources: a sandbox without the endpoints the checks read (a Typeform
    # form definition, Zendesk's agent and ticket field, Zigpoll's account and emails) failed it on every start.
    from cdp.sources.registry import SOURCES

    report = run_checks(settings_for, [source for source in SOURCES if source.scheduled])
    assert report.missing == (), report.table()
    assert set(report.checked) >= {"salesforce", "stripe", "typeform", "zigpoll", "zendesk", "galaxy", "referralhero",
                                   "surveymonkey", "moodle"}  # fmt: skip


def test_an_incomplete_org_has_every_missing_piece_listed(
    sandbox: SandboxServer, settings_for: Callable[..., SourceSettings]
) -> None:
    org = sandbox.apis.handlers["salesforce"].org
    org.multi_currency = False
    org.missing |= {
        "npsp__Partial_Soft_Credit__c",  # NPSP's soft credits not visible
        "CampaignMember",  # no access to campaign members
        "Contact.CDP_Person_Id__c",  # our external id never created
        "Contact.npe01__Preferred_Email__c",  # no field-level access to an NPSP field
        "Opportunity.Financial_Transaction_Id__c",
        "Organization.DefaultCurrencyIsoCode",  # single-currency org whose currency we cannot read
    }
    findings = [f for f in setup_findings(settings_for("salesforce")) if f.severity == "missing"]
    by_item = {f.item: f for f in findings}
    assert set(by_item) == {
        "object npsp__Partial_Soft_Credit__c",
        "object CampaignMember",
        "field Contact.CDP_Person_Id__c",
        "field Contact.npe01__Preferred_Email__c",
        "field Opportunity.Financial_Transaction_Id__c",
        "org currency",
    }
    assert "§4 custom fields" in by_item["field Contact.CDP_Person_Id__c"].setup_step
    assert "§3 NPSP" in by_item["field Contact.npe01__Preferred_Email__c"].setup_step
    assert "§5 currency" in by_item["org currency"].setup_step
    assert all(f.source == "salesforce" and f.problem for f in findings)


def test_wrong_secret_is_a_credential_finding(settings_for: Callable[..., SourceSettings]) -> None:
    good = settings_for("salesforce")
    findings = setup_findings(SourceSettings(good.base_url, "wrong", good.extra))
    assert [(f.item, f.severity) for f in findings] == [("credential", "missing")]
    assert "connected app" in findings[0].setup_step


def test_runner_reports_missing_connections_and_vendors_without_a_check(
    settings_for: Callable[..., SourceSettings],
) -> None:
    unchecked = Source("nocheck", (), None, lambda settings: [], ("nocheck",))
    report = run_checks(
        lambda conn_id: settings_for("salesforce") if conn_id == "salesforce" else None,
        [BY_NAME["salesforce"], unchecked],
    )
    assert report.checked == ("salesforce",) and report.not_checked == ("nocheck",)
    assert report.ok
    assert any(
        f.source == "nocheck" and NOT_CHECKED in f.problem and f.severity == "warning"
        for f in report.findings
    )
    assert "nocheck" in report.table() and NOT_CHECKED in report.summary()
    missing_connection = run_checks(lambda conn_id: None, [BY_NAME["salesforce"]])
    assert not missing_connection.ok
    assert missing_connection.missing[0].item == "connection salesforce"


def test_cli_prints_one_table_and_exits_non_zero_when_something_is_missing(
    sandbox: SandboxServer,
    settings_for: Callable[..., SourceSettings],
    monkeypatch: pytest.MonkeyPatch,
    capsys,
) -> None:
    settings = settings_for("salesforce")
    spec = {"conn_type": "http", "host": settings.base_url, "password": settings.credential,
            "extra": {k: v for k, v in settings.extra.items() if k != "sleep"}}  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_SALESFORCE", json.dumps(spec))
    assert cli.main(["sources", "check", "--source", "salesforce"]) == 0
    assert "checked: salesforce (ok)" in capsys.readouterr().out
    sandbox.apis.handlers["salesforce"].org.missing.add("Contact.CDP_Person_Id__c")
    assert cli.main(["sources", "check", "--source", "salesforce"]) == 1
    out = capsys.readouterr().out
    header = out.splitlines()[0].split()
    assert header[:3] == ["source", "item", "problem"]
    assert "field Contact.CDP_Person_Id__c" in out and "salesforce (1 missing)" in out


def test_settings_from_environment_reads_airflow_uris_and_json() -> None:
    lookup = settings_from_environment(
        {"AIRFLOW_CONN_A": "http://:s3cret@api.example.org:8443?__extra__=%7B%22client_id%22%3A+%22x%22%7D",
         "AIRFLOW_CONN_B": json.dumps({"host": "https://b.example.org/", "password": "p", "extra": '{"k": 1}'})}
    )  # fmt: skip
    assert lookup("a") == SourceSettings("https://api.example.org:8443", "s3cret", {"client_id": "x"})
    assert lookup("b") == SourceSettings("https://b.example.org", "p", {"k": 1})
    assert lookup("c") is None
