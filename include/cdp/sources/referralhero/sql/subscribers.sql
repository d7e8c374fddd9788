-- ReferralHero subscribers → core.referral (one row per subscriber: who they are, who referred them, the
-- clicks and sign-ups their own link brought) and their delivered rewards → core.reward. A referrer not
-- resolved yet (e.g. held in quarantine) is kept as its source id and linked by a later run.
INSERT INTO core.referral (referrer_person_id, referred_person_id, status, clicked_at, signed_up_at, source,
                           source_record_id, referrer_source_id, referral_code, clicks, people_referred)
SELECT DISTINCT ON (b.source_record_id)
       coalesce(rp.merged_into, rp.person_id),
       i.person_id,
       CASE WHEN b.payload ->> 'status' IN ('confirmed', 'organic') THEN 'signed_up' ELSE 'clicked' END,
       NULL::timestamptz,
       to_timestamp((b.payload ->> 'created_at')::bigint),
       'referralhero', b.source_record_id,
       b.payload #>> '{referred_by,id}',
       b.payload ->> 'code',
       (b.payload ->> 'unique_clicks')::integer,
       (b.payload ->> 'people_referred')::integer
FROM sync_batch b
JOIN incoming_people i ON i.source_record_id = b.source_record_id
LEFT JOIN core.person_source_id rm ON rm.source = %(person_source)s AND rm.source_record_id = b.payload #>> '{referred_by,id}'
LEFT JOIN core.person rp ON rp.person_id = rm.person_id
WHERE b.reason IS NULL
ORDER BY b.source_record_id, b.seq DESC
ON CONFLICT (source, source_record_id) DO UPDATE
SET referrer_person_id = excluded.referrer_person_id, referred_person_id = excluded.referred_person_id,
    status = excluded.status, signed_up_at = excluded.signed_up_at, referrer_source_id = excluded.referrer_source_id,
    referral_code = excluded.referral_code, clicks = excluded.clicks, people_referred = excluded.people_referred,
    updated_at = now()
WHERE (core.referral.referrer_person_id, core.referral.referred_person_id, core.referral.status,
       core.referral.signed_up_at, core.referral.referrer_source_id, core.referral.referral_code,
       core.referral.clicks, core.referral.people_referred)
      IS DISTINCT FROM (excluded.referrer_person_id, excluded.referred_person_id, excluded.status,
                        excluded.signed_up_at, excluded.referrer_source_id, excluded.referral_code,
                        excluded.clicks, excluded.people_referred);

-- Referrals landed earlier whose referrer is known now.
UPDATE core.referral r
SET referrer_person_id = coalesce(p.merged_into, p.person_id), updated_at = now()
FROM core.person_source_id m
JOIN core.person p ON p.person_id = m.person_id
WHERE r.source = 'referralhero' AND r.referrer_person_id IS NULL AND r.referrer_source_id IS NOT NULL
  AND m.source = %(person_source)s AND m.source_record_id = r.referrer_source_id;

INSERT INTO core.reward (referral_id, person_id, kind, amount_minor, currency, status, issued_at, source,
                         source_record_id)
SELECT DISTINCT ON (b.source_record_id, reward ->> 'id')
       r.referral_id, r.referred_person_id, reward ->> 'name', NULL::bigint, NULL::char(3),
       CASE reward ->> 'status' WHEN 'delivered' THEN 'issued' ELSE reward ->> 'status' END,
       CASE WHEN reward ->> 'status' IN ('delivered', 'redeemed') THEN to_timestamp((reward ->> 'created_at')::bigint) END,
       'referralhero', b.source_record_id || ':' || (reward ->> 'id')
FROM sync_batch b
CROSS JOIN LATERAL jsonb_array_elements(coalesce(b.payload -> 'rewards', '[]'::jsonb)) reward
JOIN core.referral r ON r.source = 'referralhero' AND r.source_record_id = b.source_record_id
WHERE b.reason IS NULL
ORDER BY b.source_record_id, reward ->> 'id', b.seq DESC
ON CONFLICT (source, source_record_id) DO UPDATE
SET referral_id = excluded.referral_id, person_id = excluded.person_id, kind = excluded.kind,
    status = excluded.status, issued_at = excluded.issued_at, updated_at = now()
WHERE (core.reward.referral_id, core.reward.person_id, core.reward.kind, core.reward.status, core.reward.issued_at)
      IS DISTINCT FROM (excluded.referral_id, excluded.person_id, excluded.kind, excluded.status, excluded.issued_at);
