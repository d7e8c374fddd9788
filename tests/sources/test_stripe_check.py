"""``cdp sources check`` for Stripe: what the vendor side lacks, against a server that speaks Stripe's protocol
(401 for a wrong key, 403 for a restricted key without a permission), with Stripe's own example charges."""

from __future__ import annotations

from stripe_material import KEY, ConformingStripe, example

from cdp.sources.base import SourceSettings
from cdp.sources.stripe import METADATA_KEY_OPTION
from cdp.sources.stripe.check import setup_findings


def _charges(with_key: int, without_key: int) -> list[dict]:
    charges = []
    for i in range(with_key + without_key):
        charge = example("charge")
        charge.update(id=f"ch_check{i}", created=1_700_000_000 + i, status="succeeded",
                      metadata={"gift_id": f"G{i}"} if i < with_key else {})  # fmt: skip
        charges.append(charge)
    return charges


def test_a_complete_setup_has_no_findings() -> None:
    with ConformingStripe({"charges": _charges(3, 0)}) as server:
        findings = setup_findings(SourceSettings(server.url, KEY, {METADATA_KEY_OPTION: "gift_id"}))
    # The material server's key is a test-mode key: said as a warning, nothing missing.
    assert [(f.item, f.severity) for f in findings] == [("credential", "warning")]


def test_a_wrong_key_is_the_only_finding() -> None:
    with ConformingStripe({"charges": []}) as server:
        findings = setup_findings(SourceSettings(server.url, "sk_live_wrong", {}))
    assert [(f.item, f.severity) for f in findings] == [("credential", "missing")]
    assert "invalid API key" in findings[0].problem and "SETUP.md" in findings[0].setup_step


def test_a_restricted_key_without_permissions_and_charges_without_the_metadata_key_are_named() -> None:
    with ConformingStripe({"charges": _charges(2, 3)}) as server:
        server.forbidden = {"disputes", "events"}
        findings = setup_findings(SourceSettings(server.url, KEY, {METADATA_KEY_OPTION: "gift_id"}))
        server.objects["charges"] = _charges(0, 2)
        none_carry = setup_findings(SourceSettings(server.url, KEY, {METADATA_KEY_OPTION: "gift_id"}))
    by_item = {f.item: f for f in findings}
    assert set(by_item) == {
        "credential",
        "permission Disputes: Read",
        "permission Events: Read",
        "metadata key gift_id",
    }
    assert "does not have the required permissions" in by_item["permission Events: Read"].problem
    assert by_item["permission Events: Read"].severity == "missing"
    metadata = by_item["metadata key gift_id"]
    assert metadata.severity == "warning" and metadata.problem.startswith(
        "3 of the latest 5 succeeded charges"
    )
    assert [f.severity for f in none_carry if f.item == "metadata key gift_id"] == ["missing"]
