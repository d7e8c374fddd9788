-- Today's definition, re-applied by `cdp migrate` after the revisions: change it here (sql/README.md).
-- Last defined by sql/migrations/versions/0004_quality_finance.sql.

-- Nobody changes a donation's money, status, donor or transaction except the sync and an approved correction
-- (finance and admin have no UPDATE on core.donation since 0017; this holds if a later grant widens that). When the sync re-lands
-- the very value an applied correction replaced (an overlap window, a backfill), the correction is kept;
-- a value the source has newly changed still lands (and the next reconciliation shows any difference).
CREATE OR REPLACE FUNCTION core.guard_donation_money() RETURNS trigger
    LANGUAGE plpgsql
AS $$
DECLARE
    correction text := nullif(current_setting('cdp.correction_id', true), '');
    applied    ops.donation_correction;
    kept       jsonb;
BEGIN
    IF TG_OP = 'UPDATE' AND correction IS NULL THEN
        applied := ops.latest_applied_correction(NEW.donation_id);
        IF applied.correction_id IS NOT NULL THEN
            SELECT jsonb_object_agg(k, to_jsonb(OLD) -> k) INTO kept
              FROM jsonb_object_keys(applied.after) k
             WHERE to_jsonb(NEW) -> k = applied.before -> k AND to_jsonb(OLD) -> k = applied.after -> k;
            IF kept IS NOT NULL THEN
                NEW := jsonb_populate_record(NEW, kept);
            END IF;
        END IF;
    END IF;
    -- What finance reconciles (issue 15): the money, the status, the donor, the transaction and its source.
    IF TG_OP = 'UPDATE'
       AND (NEW.amount_minor, NEW.currency, NEW.fee_minor, NEW.refunded_minor, NEW.status, NEW.person_id,
            NEW.household_id, NEW.organization_id, NEW.financial_transaction_id, NEW.received_at, NEW.campaign,
            NEW.source, NEW.source_record_id)
           IS NOT DISTINCT FROM
           (OLD.amount_minor, OLD.currency, OLD.fee_minor, OLD.refunded_minor, OLD.status, OLD.person_id,
            OLD.household_id, OLD.organization_id, OLD.financial_transaction_id, OLD.received_at, OLD.campaign,
            OLD.source, OLD.source_record_id) THEN
        RETURN NEW;
    END IF;
    IF pg_has_role(current_user, 'cdp_loader', 'MEMBER') THEN
        RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    END IF;
    -- A merge (ops.merge_people, which runs as cdp_definer) moves the donation from the absorbed person to the
    -- survivor, nothing else (revision 0027: the dedupe role has no right on donations).
    IF TG_OP = 'UPDATE' AND current_user = 'cdp_definer'
       AND (NEW.amount_minor, NEW.currency, NEW.fee_minor, NEW.refunded_minor, NEW.status, NEW.household_id,
            NEW.organization_id, NEW.financial_transaction_id, NEW.received_at, NEW.campaign, NEW.source,
            NEW.source_record_id)
           IS NOT DISTINCT FROM
           (OLD.amount_minor, OLD.currency, OLD.fee_minor, OLD.refunded_minor, OLD.status, OLD.household_id,
            OLD.organization_id, OLD.financial_transaction_id, OLD.received_at, OLD.campaign, OLD.source,
            OLD.source_record_id)
       AND EXISTS (SELECT 1 FROM ops.identity_merge m
                   WHERE m.absorbed_id = OLD.person_id AND m.survivor_id = NEW.person_id AND m.unmerged_at IS NULL) THEN
        RETURN NEW;
    END IF;
    IF TG_OP = 'UPDATE' AND correction IS NOT NULL AND EXISTS (
            SELECT 1 FROM ops.donation_correction c
            WHERE c.correction_id = correction::bigint AND c.status = 'approved' AND c.donation_id = NEW.donation_id) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'a donation''s reconciled fields change only through an approved correction (cdp finance correction request); % may not % them',
        current_user, lower(TG_OP) USING ERRCODE = 'insufficient_privilege';
END
$$;
-- No grants: PostgreSQL's default (EXECUTE for PUBLIC).
