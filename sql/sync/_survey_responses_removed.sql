-- Survey responses deleted in the survey tool (Typeform, SurveyMonkey). Neither tool reports a deletion: a
-- deleted response simply stops being listed. After a complete listing of one survey's response ids
-- (source_listing, filled only when %(listing_complete)s; the connector's id reconciliation), a response of
-- that survey core holds but the tool no longer lists is marked deleted (deleted_at), and unmarked if it is
-- listed again. Only responses submitted before %(listing_settled_before)s are judged: the newest may not be
-- listed yet. The rows stay (with the consent their answers gave); each UPDATE is recorded by the table's audit
-- trigger, and ops.count_window counts a deleted response apart. A listing that came back short marks nothing.
-- Parameters: source, listing_complete, listing_survey_id, listing_settled_before (the spec's defaults,
-- '' and '-infinity', judge nothing when the connector listed nothing).
UPDATE core.survey_response r
SET deleted_at = now(), updated_at = now()
WHERE %(listing_complete)s AND r.source = %(source)s AND r.survey_id = %(listing_survey_id)s
  AND r.deleted_at IS NULL AND r.submitted_at < %(listing_settled_before)s::timestamptz
  AND NOT EXISTS (SELECT 1 FROM source_listing l WHERE l.source_record_id = r.source_record_id);

UPDATE core.survey_response r
SET deleted_at = NULL, updated_at = now()
WHERE %(listing_complete)s AND r.source = %(source)s AND r.survey_id = %(listing_survey_id)s
  AND r.deleted_at IS NOT NULL
  AND EXISTS (SELECT 1 FROM source_listing l WHERE l.source_record_id = r.source_record_id);
