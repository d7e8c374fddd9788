-- Today's definition, re-applied by `cdp migrate` after the revisions: change it here (sql/README.md).
-- Added by issue 19 (revision 0031 has the tables).

-- A numeric of cents rounded to whole cents as NPSP rounds a percent allocation: Apex Decimal.setScale(2)
-- without a rounding mode, which is half-even (ALLO_Allocations_TDTM: (amount * Percent__c * .01).setScale(2)).
CREATE OR REPLACE FUNCTION ops.round_half_even(x numeric) RETURNS bigint
    LANGUAGE sql IMMUTABLE STRICT
AS $$
    SELECT (CASE WHEN abs(x - trunc(x)) = 0.5
                 THEN trunc(x) + CASE WHEN trunc(x)::bigint % 2 = 0 THEN 0 ELSE sign(x) END
                 ELSE round(x) END)::bigint
$$;
-- No grants: PostgreSQL's default (EXECUTE for PUBLIC).
