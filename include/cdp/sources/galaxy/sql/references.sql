-- Galaxy Digital shift responses and hours point (user.id) to a volunteer already in core; one whose volunteer is
-- not there (quarantined, or not synced yet) is kept in quarantine with the reason and re-tried later.
UPDATE sync_batch b
SET reason = 'unknown volunteer: the galaxy user in user.id is not in the warehouse',
    reason_value = b.payload #>> '{user,id}'
WHERE b.reason IS NULL
  AND NOT EXISTS (SELECT 1 FROM core.volunteer v
                  WHERE v.source = 'galaxy' AND v.source_record_id = b.payload #>> '{user,id}');
