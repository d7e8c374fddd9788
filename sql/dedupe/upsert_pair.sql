-- A scored pair into the review history: new pairs are queued; a known pair gets this run's score, class
-- and levels (its status and guard stay as decided). Parameters: low, high, first run, last run, score,
-- match weight, class, guard, levels (jsonb text).
INSERT INTO ops.identity_pair (person_low, person_high, first_run_id, last_run_id, score, match_weight, class,
                               guard, levels, status)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, 'queued')
ON CONFLICT (person_low, person_high) DO UPDATE SET
    last_run_id = excluded.last_run_id, score = excluded.score, match_weight = excluded.match_weight,
    class = excluded.class, levels = excluded.levels, updated_at = now()
RETURNING pair_id
