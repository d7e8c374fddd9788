"""The sandbox's vendors, in one place: what each fake builds, serves, accepts and hands a connector.

A new fake is one module (its data, its API, its credential and its connection settings; see ``zendesk``)
plus one line below. ``generator.World`` builds the vendors' tables (each after the vendors it reads,
``after``), the server mounts every vendor with an API at ``/<name>``, in this order, and
``server.sandbox_settings`` asks the vendor for its connection settings.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from cdp.sources.base import SourceSettings
from cdp_sandbox import (
    certificates,
    ledger,
    moodle,
    referralhero,
    registration,
    salesforce,
    stripe,
    surveymonkey,
    surveys,
    typeform,
    volunteers,
    zendesk,
    zigpoll,
)
from cdp_sandbox.apis import Handler, VendorApis
from cdp_sandbox.core import Credentials, WorldCore


@dataclass(frozen=True)
class Vendor:
    name: str  # the source's name in cdp (its connection, its mount: /<name>)
    credential: str  # what the fake accepts (world.credentials.<name>)
    settings: Callable[
        [WorldCore, str, Path | str | None], SourceSettings
    ]  # (world, base URL, ledger folder)
    build: Callable[[WorldCore], None] | None = (
        None  # adds its tables to the world; None: none, or built by another
    )
    api: Callable[[VendorApis], Handler] | None = (
        None  # its API for one running server; None: not served over HTTP
    )
    after: tuple[str, ...] = ()  # vendors whose data its build reads (built first)


VENDORS: Mapping[str, Vendor] = {
    vendor.name: vendor
    for vendor in (
        Vendor("moodle", moodle.CREDENTIAL, moodle.settings, moodle.build, moodle.api),
        Vendor(
            "salesforce",
            salesforce.CREDENTIAL,
            salesforce.settings,
            salesforce.build,
            salesforce.SalesforceApi,
            after=("stripe",),  # a gift in the CRM is a Stripe charge
        ),  # fmt: skip
        Vendor("stripe", stripe.CREDENTIAL, stripe.settings, stripe.build, stripe.api),  # draws the gifts
        Vendor("typeform", typeform.CREDENTIAL, typeform.settings, None, typeform.api),  # built with Zigpoll
        # Zigpoll and Typeform share one random stream: surveys.build draws both (people's Moodle ids in them).
        Vendor(
            "zigpoll", zigpoll.CREDENTIAL, zigpoll.settings, surveys.build, zigpoll.api, after=("moodle",)
        ),
        Vendor(
            "surveymonkey",
            surveymonkey.CREDENTIAL,
            surveymonkey.settings,
            surveymonkey.build,
            surveymonkey.api,
        ),  # fmt: skip
        Vendor(
            "referralhero",
            referralhero.CREDENTIAL,
            referralhero.settings,
            referralhero.build,
            referralhero.ReferralHeroApi,
        ),  # fmt: skip
        Vendor(
            "galaxy", volunteers.CREDENTIAL, volunteers.settings, None, volunteers.api
        ),  # built on first use
        Vendor(
            "zendesk",
            zendesk.CREDENTIAL,
            zendesk.settings,
            zendesk.build,
            zendesk.api,
            after=("referralhero",),  # tickets about referrals name subscribers
        ),  # fmt: skip
        Vendor(
            "certificates", certificates.CREDENTIAL, certificates.settings, None, certificates.CertificateApi
        ),
        Vendor(
            "ledger", ledger.CREDENTIAL, ledger.settings, ledger.build, after=("stripe",)
        ),  # CSV drops, no API
        # Push-only: signed webhooks to the intake; its mount is the form's console (cdp_sandbox.registration).
        Vendor(
            "registration",
            registration.CREDENTIAL,
            registration.settings,
            registration.build,
            registration.api,
        ),
    )
}


def build_order() -> list[Vendor]:
    """The vendors with data, each after the ones it reads (``after``), otherwise in registry order."""
    ordered: list[Vendor] = []

    def visit(vendor: Vendor, path: tuple[str, ...]) -> None:
        if vendor in ordered:
            return
        if vendor.name in path:
            raise ValueError(
                f"vendors read each other's data in a circle: {' -> '.join((*path, vendor.name))}"
            )
        for name in vendor.after:
            visit(VENDORS[name], (*path, vendor.name))
        ordered.append(vendor)

    for vendor in VENDORS.values():
        visit(vendor, ())
    return [vendor for vendor in ordered if vendor.build is not None]


def registered_credentials() -> Credentials:
    """Every vendor's sandbox credential (a World's default)."""
    return Credentials({name: vendor.credential for name, vendor in VENDORS.items()})


def api_factories() -> dict[str, Callable[[VendorApis], Handler]]:
    """The mounts of the server: every vendor with an API, in registry order."""
    return {name: vendor.api for name, vendor in VENDORS.items() if vendor.api is not None}
