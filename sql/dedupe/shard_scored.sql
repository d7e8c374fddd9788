-- A shard's candidate pairs and seconds into its run's details (shard_candidates, shard_seconds; apply_run
-- checks that every shard is there). Parameters: shard, candidates, shard, seconds, run id.
UPDATE ops.dedupe_run
SET details = jsonb_set(
    jsonb_set(details, '{shard_candidates}',
              coalesce(details -> 'shard_candidates', '{}'::jsonb) || jsonb_build_object(%s::text, %s::bigint)),
    '{shard_seconds}',
    coalesce(details -> 'shard_seconds', '{}'::jsonb) || jsonb_build_object(%s::text, %s::float))
WHERE run_id = %s
