-- Records held back and not yet resolved, per stream, with the most common reason class.
-- The page shows what kind of problem a record has, never the record's values: a validator's reason
-- quotes the value it refused ("impossible date in date_of_birth: '2031-02-30'", "unknown value 'x' in
-- status", "impossible age in age: 131"), so the value is cut away here, before anything counts or shows it:
--   1. "unknown value|currency <value> in <path>"  ->  "unknown value|currency in <path>";
--   2. ": <a Python repr>" to the end goes (a quoted text, a number, a list, a dict, None, True, False,
--      Decimal('1.5')); a nested reason keeps its path ("rewards: impossible date in date"), and a colon
--      before words stays ("impossible dates: timeend before timestart", "missing_required: referrer_email");
--   3. any quoted text still left (a format not known here) becomes "…".
WITH open AS (
    SELECT source, stream, quarantined_at,
           regexp_replace(
               regexp_replace(
                   regexp_replace(reason, '(unknown (?:value|currency)) .* in (\S+)$', '\1 in \2'),
                   ': (?:[''"\[{(]|-?[0-9]|None\M|True\M|False\M|[A-Za-z_.]+\().*$', ''),
               '''[^'']*''|"[^"]*"', '…', 'g') AS reason_class
    FROM ops.quarantine
    WHERE resolved_at IS NULL
)
SELECT source, stream, count(*) AS open_count,
       mode() WITHIN GROUP (ORDER BY reason_class) AS top_reason,
       min(quarantined_at) AS oldest_at
FROM open
GROUP BY source, stream
ORDER BY open_count DESC, source, stream;
