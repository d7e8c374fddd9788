-- Rewards the platform unlocked that are not fulfilled yet: never tried, still 'requested' (a run that died
-- between asking the platform and recording the answer) or waiting in the manual fallback queue. Rewards that
-- staff fulfilled by hand are done.
SELECT w.reward_id,
       w.source_record_id,
       split_part(w.source_record_id, ':', 1) AS subscriber_id,
       split_part(w.source_record_id, ':', 2) AS platform_reward_id,
       f.status AS fulfilment_status
FROM core.reward w
LEFT JOIN ops.reward_fulfilment f USING (reward_id)
WHERE w.source = 'referralhero' AND w.status = 'issued'
  AND (f.status IS NULL OR f.status IN ('requested', 'queued_manual'))
ORDER BY w.issued_at, w.source_record_id;
