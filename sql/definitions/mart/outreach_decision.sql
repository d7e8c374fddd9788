-- Today's definition, re-applied by `cdp migrate` after the revisions: change it here (sql/README.md).
-- Last defined by sql/migrations/versions/0005_access_consent.sql.

-- Consent decisions. Per person (merged-away records roll up to their survivor) and purpose: the latest
-- explicit statement wins (history rows are never overwritten); a minor, below the jurisdiction's age of
-- consent, needs verified parental consent not withdrawn since; unknown age counts as a minor and, with
-- nothing to compare to, is never eligible. refusal_reason NULL means eligible.
CREATE OR REPLACE VIEW mart.outreach_decision AS
WITH statements AS (
    SELECT coalesce(owner.merged_into, c.person_id) AS person_id, c.purpose, c.status, c.stated_at,
           c.recorded_at, c.consent_id, c.lawful_basis, c.receipt_id, c.source
    FROM core.consent c
    JOIN core.person owner ON owner.person_id = c.person_id
), latest AS (
    SELECT DISTINCT ON (person_id, purpose) *
    FROM statements
    ORDER BY person_id, purpose, stated_at DESC, recorded_at DESC, consent_id DESC
), parental AS (
    SELECT person_id, purpose,
           max(stated_at) FILTER (WHERE status = 'parental_consent_verified') AS verified_at,
           max(stated_at) FILTER (WHERE status IN ('refused', 'withdrawn')) AS negative_at
    FROM statements
    GROUP BY person_id, purpose
), people AS (
    SELECT p.person_id, p.erased_at,
           CASE WHEN p.date_of_birth IS NOT NULL
                THEN extract(year FROM age(current_date, p.date_of_birth))::integer END AS age,
           coalesce(rule.age_of_consent, fallback.age_of_consent) AS age_of_consent
    FROM core.person p
    JOIN core.consent_age_rule fallback ON fallback.jurisdiction = 'DEFAULT'
    LEFT JOIN core.consent_age_rule rule ON rule.jurisdiction = upper(p.jurisdiction)
    WHERE p.merged_into IS NULL
)
SELECT pe.person_id, pu.purpose, pe.age, pe.age_of_consent, l.status AS latest_status,
       l.stated_at, l.lawful_basis, l.receipt_id, l.source AS consent_source,
       CASE
           WHEN pe.erased_at IS NOT NULL THEN 'erased'
           WHEN l.status IS NULL THEN 'no_statement'
           WHEN l.status NOT IN ('given', 'parental_consent_verified') THEN 'latest_statement_' || l.status
           WHEN pe.age IS NULL THEN 'age_unknown'
           WHEN pe.age < pe.age_of_consent
                AND NOT (pa.verified_at IS NOT NULL AND (pa.negative_at IS NULL OR pa.verified_at > pa.negative_at))
               THEN 'minor_without_verified_parental_consent'
       END AS refusal_reason
FROM people pe
CROSS JOIN (VALUES ('course_messages'), ('fundraising'), ('surveys'), ('partner_sharing')) AS pu(purpose)
LEFT JOIN latest l ON l.person_id = pe.person_id AND l.purpose = pu.purpose
LEFT JOIN parental pa ON pa.person_id = pe.person_id AND pa.purpose = pu.purpose;
COMMENT ON VIEW mart.outreach_decision IS
    'Why each person may or may not be contacted for each purpose (no contact details). NULL reason = eligible.';
REVOKE ALL ON mart.outreach_decision FROM PUBLIC;
GRANT SELECT ON mart.outreach_decision TO cdp_viewer, cdp_editor, cdp_admin, cdp_finance;
