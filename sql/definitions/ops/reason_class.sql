-- Today's definition, re-applied by `cdp migrate` after the revisions: change it here (sql/README.md).
-- Added by issue 15 (no revision defines it).

-- What kind of problem a quarantined record has, without the record's values: a validator's reason quotes
-- the value it refused ("impossible date in date_of_birth: '2031-02-30'", "unknown value 'x' in status",
-- "impossible age in age: 131"), and whatever shows or sends a reason (the data-health page, the Slack
-- quarantine alert) shows this instead:
--   1. "unknown value|currency <value> in <path>"  ->  "unknown value|currency in <path>";
--   2. ": <a Python repr>" to the end goes (a quoted text, a number, a list, a dict, None, True, False,
--      Decimal('1.5')); a nested reason keeps its path ("rewards: impossible date in date"), and a colon
--      before words stays ("impossible dates: timeend before timestart", "missing_required: referrer_email");
--   3. any quoted text still left (a format not known here) becomes "…".
CREATE OR REPLACE FUNCTION ops.reason_class(p_reason text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT regexp_replace(
               regexp_replace(
                   regexp_replace(p_reason, '(unknown (?:value|currency)) .* in (\S+)$', '\1 in \2'),
                   ': (?:[''"\[{(]|-?[0-9]|None\M|True\M|False\M|[A-Za-z_.]+\().*$', ''),
               '''[^'']*''|"[^"]*"', '…', 'g')
$$;
-- No grants: PostgreSQL's default (EXECUTE for PUBLIC); it reads nothing.
