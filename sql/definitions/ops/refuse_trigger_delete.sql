-- Today's definition, re-applied by `cdp migrate` after the revisions: change it here (sql/README.md).
-- Last defined by sql/migrations/versions/0007_crm_push_triggers.sql.

-- The ledger is evidence that a trigger happened: nobody deletes from it (a deleted key would fire again).
CREATE OR REPLACE FUNCTION ops.refuse_trigger_delete() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    RAISE EXCEPTION 'ops.completion_trigger keeps every trigger: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
-- No grants: PostgreSQL's default (EXECUTE for PUBLIC).
