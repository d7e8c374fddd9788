-- Today's definition, re-applied by `cdp migrate` after the revisions: change it here (sql/README.md).
-- Last defined by sql/migrations/versions/0005_access_consent.sql.

-- Keeps the values of keys that identify records and money (ids, amounts, currencies, times, statuses)
-- and nulls every other scalar, at any depth: what financial audit needs survives, personal data does not.
CREATE OR REPLACE FUNCTION privacy.redact(value jsonb) RETURNS jsonb
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN CASE jsonb_typeof(value)
        WHEN 'object' THEN coalesce((
            SELECT jsonb_object_agg(key, CASE
                WHEN jsonb_typeof(item) IN ('object', 'array') THEN privacy.redact(item)
                WHEN key = ANY (ARRAY[
                    'id', '_id', 'object', 'type', 'status', 'amount', 'amount_captured', 'amount_refunded',
                    'amount_minor', 'currency', 'fee', 'net', 'created', 'created_at', 'createdAt', 'updated',
                    'balance_transaction', 'financial_transaction_id', 'payment_intent', 'charge', 'refunded',
                    'paid', 'captured', 'livemode', 'event_id', 'event_type', 'token', 'response_id',
                    'landing_id', 'submitted_at', 'landed_at', 'form_id', 'pollId', 'accountId', 'courseid',
                    'course', 'timestart', 'timeend', 'timecreated', 'timemodified', 'timecompleted', 'ref',
                    'reference', 'posting_date', 'account', 'close_date', 'CloseDate', 'Amount', 'StageName',
                    'Id', 'npe01__Payment_Amount__c', '_erased'])
                    THEN item
                ELSE 'null'::jsonb END)
            FROM jsonb_each(value) AS e(key, item)), '{}'::jsonb)
        WHEN 'array' THEN coalesce((
            SELECT jsonb_agg(CASE WHEN jsonb_typeof(item) IN ('object', 'array') THEN privacy.redact(item)
                                  ELSE 'null'::jsonb END ORDER BY ordinality)
            FROM jsonb_array_elements(value) WITH ORDINALITY AS e(item, ordinality)), '[]'::jsonb)
        ELSE value
    END;
END
$$;
REVOKE ALL ON FUNCTION privacy.redact(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION privacy.redact(jsonb) TO cdp_admin;
