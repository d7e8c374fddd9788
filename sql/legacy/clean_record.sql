-- One legacy row after the cleanup (its values, the fixes made, its status, the row it duplicates),
-- written only when something differs so that a re-run changes nothing. Parameters: export, row key,
-- file sha256, row number, values (jsonb), fixes, status, duplicate_of, run id.
INSERT INTO ops.legacy_clean_record (export, row_key, file_sha256, row_number, values, fixes, status,
                                     duplicate_of, run_id)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (export, row_key) DO UPDATE SET
    values = excluded.values, fixes = excluded.fixes, status = excluded.status,
    duplicate_of = excluded.duplicate_of, run_id = excluded.run_id, updated_at = now()
WHERE (ops.legacy_clean_record.values, ops.legacy_clean_record.fixes, ops.legacy_clean_record.status,
       ops.legacy_clean_record.duplicate_of) IS DISTINCT FROM
      (excluded.values, excluded.fixes, excluded.status, excluded.duplicate_of)
