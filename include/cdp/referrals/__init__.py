"""The referral program's move from its legacy spreadsheet to ReferralHero (issue 7, DAG ``referral_migration``).

- ``legacy_import``: the spreadsheet (CSV or XLSX) into ``raw.records`` and ``ops.referral_legacy``.
- ``pilot``: the deterministic, stratified pilot share of active learners.
- ``parallel_run``: legacy tracking and the platform side by side, one discrepancy per referral.
- ``fulfilment``: rewards fulfilled once through the platform, or queued for people while it is down.
- ``outage``: no referrals tracked for N hours while sign-ups continue -> one grouped data alert.
"""
