-- ReferralHero subscribers removed from the campaign. ReferralHero's API lists no removals: a subscriber the
-- complete listing of this run (source_listing, filled only when %(listing_complete)s) no longer holds is
-- marked deleted in core.referral (deleted_at), and unmarked if it is listed again. The rows stay, with their
-- rewards and the tickets that name them; the UPDATE is recorded by the table's audit trigger. A listing
-- that came back short (a page lost on the way) marks nothing. Parameters: listing_complete.
UPDATE core.referral r
SET deleted_at = now(), updated_at = now()
WHERE %(listing_complete)s AND r.source = 'referralhero' AND r.deleted_at IS NULL
  AND NOT EXISTS (SELECT 1 FROM source_listing l WHERE l.source_record_id = r.source_record_id);

UPDATE core.referral r
SET deleted_at = NULL, updated_at = now()
WHERE %(listing_complete)s AND r.source = 'referralhero' AND r.deleted_at IS NOT NULL
  AND EXISTS (SELECT 1 FROM source_listing l WHERE l.source_record_id = r.source_record_id);
