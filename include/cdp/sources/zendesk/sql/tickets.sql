-- Zendesk tickets → core.support_ticket. Each record is the ticket as exported plus its side-loaded requester
-- (cdp.sources.zendesk). The requester is resolved by exact keys only, and no person is ever created for a
-- ticket: 1. the Zendesk user already mapped to a person ('zendesk.user' in core.person_source_id, following
-- a merge to its survivor); 2. else the normalised email with exactly the full name (Zendesk has one name
-- field, so in either order, as for ReferralHero subscribers) when exactly one known person holds them (a
-- merged person counts as its survivor, as in _resolve_people.sql): a family sharing one address is told
-- apart by name; 3. else no person: the ticket keeps the email's sha256 only, and every later run tries
-- again (the requester may register later). A requester resolved by 2 is mapped so that later tickets (and
-- an unmerge) follow the mapping. A ticket whose referral is not in the warehouse yet keeps the reference
-- and is linked by a later run. Parameters: source, stream, run_id.
CREATE TEMP TABLE incoming_tickets ON COMMIT DROP AS
WITH batch AS (
    SELECT DISTINCT ON (b.source_record_id) b.source_record_id, b.payload
    FROM sync_batch b
    WHERE b.reason IS NULL
    ORDER BY b.source_record_id, b.seq DESC
), waiting AS (
    -- Tickets landed earlier without a person: their requester is resolved again (they may have registered
    -- since), from the payload the ticket was landed from (the one whose requester email has the ticket's
    -- hash). Only the person id is written back. A ticket whose hash erasure removed is left alone.
    SELECT t.source_record_id, r.payload
    FROM core.support_ticket t
    CROSS JOIN LATERAL (SELECT r.payload FROM raw.records r
                        WHERE r.source = %(source)s AND r.stream = %(stream)s
                          AND r.source_record_id = t.source_record_id
                          AND encode(sha256(convert_to(lower(trim(r.payload #>> '{requester,email}')), 'UTF8')),
                                     'hex') = t.requester_email_sha256
                        ORDER BY r.raw_id DESC LIMIT 1) r
    WHERE t.source = %(source)s AND t.person_id IS NULL AND t.requester_email_sha256 IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM batch b WHERE b.source_record_id = t.source_record_id)
), tickets AS (
    SELECT source_record_id, payload, false AS waiting FROM batch
    UNION ALL
    SELECT source_record_id, payload, true FROM waiting
)
SELECT b.source_record_id,
       b.payload,
       b.waiting,
       b.payload ->> 'requester_id' AS requester_id,
       nullif(lower(trim(b.payload #>> '{requester,email}')), '') AS email_normalized,
       nullif(lower(trim(b.payload #>> '{requester,name}')), '') AS full_name,
       (SELECT nullif(trim(f ->> 'value'), '')
        FROM jsonb_array_elements(coalesce(b.payload -> 'custom_fields', '[]'::jsonb)) AS f
        WHERE f ->> 'id' = b.payload ->> 'referral_field_id'
        LIMIT 1) AS referral_ref,
       ARRAY(SELECT jsonb_array_elements_text(coalesce(b.payload -> 'tags', '[]'::jsonb))) AS tags,
       NULL::uuid AS person_id
FROM tickets b;
ANALYZE incoming_tickets;

UPDATE incoming_tickets i
SET person_id = coalesce(p.merged_into, p.person_id)
FROM core.person_source_id m
JOIN core.person p ON p.person_id = m.person_id
WHERE m.source = 'zendesk.user' AND m.source_record_id = i.requester_id;

WITH candidates AS (
    SELECT i.source_record_id, min(coalesce(p.merged_into, p.person_id)::text)::uuid AS person_id,
           count(DISTINCT coalesce(p.merged_into, p.person_id)) AS people
    FROM incoming_tickets i
    JOIN core.person p
      ON p.email_normalized = i.email_normalized
     AND i.full_name IN (lower(trim(coalesce(p.given_name, '') || ' ' || coalesce(p.family_name, ''))),
                         lower(trim(coalesce(p.family_name, '') || ' ' || coalesce(p.given_name, ''))))
    WHERE i.person_id IS NULL AND i.full_name IS NOT NULL
    GROUP BY i.source_record_id
)
UPDATE incoming_tickets i
SET person_id = c.person_id
FROM candidates c
WHERE c.source_record_id = i.source_record_id AND c.people = 1;

INSERT INTO core.person_source_id (source, source_record_id, person_id)
SELECT DISTINCT ON (requester_id) 'zendesk.user', requester_id, person_id
FROM incoming_tickets
WHERE person_id IS NOT NULL AND requester_id IS NOT NULL
ORDER BY requester_id, source_record_id DESC
ON CONFLICT (source, source_record_id) DO NOTHING;

-- An erased person's tickets never get their subject or email hash back from a re-sync. A ticket deleted in
-- Zendesk comes through the incremental export with status "deleted": it keeps that status and gets deleted_at
-- (revision 0024; the UPDATE is recorded by the table's audit trigger), cleared if Zendesk restores it.
INSERT INTO core.support_ticket (person_id, requester_source_id, requester_email_sha256, subject, status, tags,
                                 referral_ref, referral_id, about_referral, opened_at, changed_at, source,
                                 source_record_id, deleted_at)
SELECT i.person_id,
       i.requester_id,
       CASE WHEN p.erased_at IS NULL AND i.email_normalized IS NOT NULL
            THEN encode(sha256(convert_to(i.email_normalized, 'UTF8')), 'hex') END,
       CASE WHEN p.erased_at IS NULL THEN i.payload ->> 'subject' END,
       i.payload ->> 'status',
       i.tags,
       i.referral_ref,
       r.referral_id,
       'referral' = ANY (i.tags) OR i.referral_ref IS NOT NULL,
       (i.payload ->> 'created_at')::timestamptz,
       (i.payload ->> 'updated_at')::timestamptz,
       %(source)s,
       i.source_record_id,
       CASE WHEN i.payload ->> 'status' = 'deleted' THEN now() END
FROM incoming_tickets i
LEFT JOIN core.person p ON p.person_id = i.person_id
LEFT JOIN LATERAL (SELECT c.referral_id FROM core.referral c
                   WHERE c.source = 'referralhero' AND i.referral_ref IS NOT NULL
                     AND (c.source_record_id = i.referral_ref OR c.referral_code = i.referral_ref)
                   ORDER BY c.source_record_id = i.referral_ref DESC, c.source_record_id
                   LIMIT 1) r ON true
WHERE NOT i.waiting
ON CONFLICT (source, source_record_id) DO UPDATE
SET person_id = excluded.person_id, requester_source_id = excluded.requester_source_id,
    requester_email_sha256 = excluded.requester_email_sha256, subject = excluded.subject,
    status = excluded.status, tags = excluded.tags, referral_ref = excluded.referral_ref,
    referral_id = excluded.referral_id, about_referral = excluded.about_referral,
    opened_at = excluded.opened_at, changed_at = excluded.changed_at,
    deleted_at = CASE WHEN excluded.deleted_at IS NULL THEN NULL
                      ELSE coalesce(core.support_ticket.deleted_at, excluded.deleted_at) END,
    updated_at = now()
WHERE (core.support_ticket.person_id, core.support_ticket.requester_source_id,
       core.support_ticket.requester_email_sha256, core.support_ticket.subject, core.support_ticket.status,
       core.support_ticket.tags, core.support_ticket.referral_ref, core.support_ticket.referral_id,
       core.support_ticket.about_referral, core.support_ticket.opened_at, core.support_ticket.changed_at,
       core.support_ticket.deleted_at IS NULL)
      IS DISTINCT FROM
      (excluded.person_id, excluded.requester_source_id, excluded.requester_email_sha256, excluded.subject,
       excluded.status, excluded.tags, excluded.referral_ref, excluded.referral_id, excluded.about_referral,
       excluded.opened_at, excluded.changed_at, excluded.deleted_at IS NULL);

-- Tickets landed earlier without a person whose requester is known now.
UPDATE core.support_ticket t
SET person_id = i.person_id, updated_at = now()
FROM incoming_tickets i
WHERE i.waiting AND i.person_id IS NOT NULL
  AND t.source = %(source)s AND t.source_record_id = i.source_record_id AND t.person_id IS NULL;

-- Tickets landed earlier whose referral has arrived since.
UPDATE core.support_ticket t
SET referral_id = c.referral_id, updated_at = now()
FROM core.referral c
WHERE t.source = %(source)s AND t.referral_id IS NULL AND t.referral_ref IS NOT NULL
  AND c.source = 'referralhero' AND c.source_record_id = t.referral_ref;
