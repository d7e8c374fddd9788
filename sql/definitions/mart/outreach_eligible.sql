-- Today's definition, re-applied by `cdp migrate` after the revisions: change it here (sql/README.md).
-- Last defined by sql/migrations/versions/0005_access_consent.sql.

-- The only way to any outreach list. security_barrier: a caller's WHERE cannot peek past the filter.
CREATE OR REPLACE VIEW mart.outreach_eligible WITH (security_barrier) AS
SELECT d.person_id, d.purpose, p.email, p.given_name, p.family_name, p.phone_e164, p.jurisdiction,
       d.latest_status AS consent_status, d.stated_at AS consent_stated_at, d.lawful_basis, d.receipt_id
FROM mart.outreach_decision d
JOIN core.person p ON p.person_id = d.person_id
WHERE d.refusal_reason IS NULL
  AND p.email IS NOT NULL;
COMMENT ON VIEW mart.outreach_eligible IS
    'People who may be contacted, per purpose, with the contact details to do it. Every outreach list reads this.';
REVOKE ALL ON mart.outreach_eligible FROM PUBLIC;
GRANT SELECT ON mart.outreach_eligible TO cdp_outreach, cdp_admin;
-- The owner of ops.draw_survey_sample: who may be asked for a survey (revision 0030).
GRANT SELECT ON mart.outreach_eligible TO cdp_definer;
