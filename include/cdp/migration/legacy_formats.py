"""The legacy exports' file names and headers, defined once.

Imported by the migration (``cdp.migration.legacy_import``, which refuses a file whose header differs) and by
the sandbox (``cdp_sandbox.legacy``, which writes files in this layout). This module imports nothing, so
neither side depends on the other's code.
"""

from __future__ import annotations

#: export -> (file names in reading order, expected header)
EXPORTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "lms_learners": (
        ("lms_learners.csv",),
        ("learner_id", "first_name", "last_name", "email", "phone", "date_of_birth", "registered_on"),
    ),
    "lms_enrollments": (
        ("lms_enrollments.csv",),
        ("enrollment_id", "learner_id", "course_code", "enrolled_on", "status"),
    ),
    "crm_contacts": (
        ("crm_contacts.csv",),
        ("contact_id", "lms_learner_id", "first_name", "last_name", "email", "phone", "created_on"),
    ),
    "donors": (("donors.xlsx",), ("donor_ref", "name", "email", "gift_date", "amount", "currency")),
    "referrals": (
        ("referrals_2023.xlsx", "referrals_2024.csv"),
        ("referral_id", "referrer_email", "referred_email", "referred_on", "reward"),
    ),
}
