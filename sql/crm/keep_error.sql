-- A record the CRM refused: one open row per person and error code, counting the attempts.
-- Parameters: first run id, last run id, person id, error code, message (values blanked), fields.
INSERT INTO ops.crm_push_error AS e (first_run_id, last_run_id, person_id, error_code, message, fields)
VALUES (%s, %s, %s, %s, %s, %s)
ON CONFLICT (person_id, error_code) WHERE resolved_at IS NULL DO UPDATE SET
    attempts = e.attempts + 1, last_run_id = excluded.last_run_id, last_failed_at = now(),
    message = excluded.message, fields = excluded.fields
