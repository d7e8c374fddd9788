-- Land the consent statements in temp table incoming_consent into core.consent, keeping history:
--   * each statement belongs to a series (statement_key: one source record's one statement) and adds a
--     row only when the series' status changes, so a re-sync or an edit that leaves consent alone adds
--     nothing;
--   * a refusal (or a parental consent taken off the form) after consent was given is a withdrawal;
--   * source_record_id names the version: statement_key '@' stated time ':' status; a changed version
--     whose source time is not after the previous one's is dated when seen (see below).
-- The latest explicit statement per person and purpose is the current one (by stated_at); the view over
-- core.consent decides eligibility. One audit event of kind 'consent' per run that added rows.
-- incoming_consent.status is NULL where the source states nothing (e.g. an empty parental-consent field).
-- Parameters: source, stream, run_id.
ANALYZE incoming_consent;

CREATE TEMP TABLE consent_changes ON COMMIT DROP AS
SELECT i.person_id, i.purpose, i.statement_key, i.lawful_basis, i.jurisdiction, i.receipt_id,
       i.parental_method, i.given_by,
       -- A new version stamped no later than the one it replaces (a source that keeps the first collection
       -- time) is dated when it was seen, so that it sorts as the latest statement; the source's time stays
       -- in the evidence.
       CASE WHEN previous.stated_at IS NOT NULL AND i.stated_at <= previous.stated_at
            THEN greatest(now(), previous.stated_at + interval '1 second') ELSE i.stated_at END AS stated_at,
       i.evidence || jsonb_build_object('source_stated_at', i.stated_at) AS evidence,
       previous.status AS previous_status,
       CASE
           WHEN i.status IS NOT NULL AND i.status <> 'refused' THEN i.status
           WHEN previous.status IN ('given', 'parental_consent_pending', 'parental_consent_verified') THEN 'withdrawn'
           WHEN previous.status IN ('withdrawn', 'refused') THEN previous.status
           ELSE i.status
       END AS effective_status
FROM incoming_consent i
LEFT JOIN LATERAL (
    SELECT c.status, c.stated_at FROM core.consent c
    WHERE c.statement_key = i.statement_key
    ORDER BY c.stated_at DESC, c.recorded_at DESC
    LIMIT 1
) previous ON true;

WITH inserted AS (
    INSERT INTO core.consent (person_id, purpose, status, lawful_basis, source, source_record_id, stated_at,
                              jurisdiction, receipt_id, parental_method, given_by, evidence, statement_key)
    SELECT person_id, purpose, effective_status, lawful_basis, %(source)s::text,
           statement_key || '@' || to_char(stated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
               || ':' || effective_status,
           stated_at, jurisdiction, receipt_id, parental_method, given_by, evidence, statement_key
    FROM consent_changes
    WHERE effective_status IS NOT NULL
      AND effective_status IS DISTINCT FROM previous_status
    ORDER BY statement_key
    ON CONFLICT (source, source_record_id) DO NOTHING
    RETURNING purpose, status
), by_status AS (
    SELECT status, count(*) AS rows_added FROM inserted GROUP BY status
)
SELECT audit.record_event(
           'consent', %(source)s::text || '.' || %(stream)s::text, NULL,
           jsonb_build_object('run_id', %(run_id)s::text,
                              'statements_read', (SELECT count(*) FROM incoming_consent),
                              'rows_added', sum(rows_added),
                              'by_status', jsonb_object_agg(status, rows_added)))
FROM by_status
HAVING count(*) > 0;
