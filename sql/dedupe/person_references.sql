-- Every single-column foreign key in core that points to core.person, with its table's primary key
-- columns (found in the catalog, so tables added by later migrations are covered without a change in code).
SELECT c.conrelid::regclass::text AS table_name, a.attname AS column_name,
       (SELECT array_agg(k.attname ORDER BY k.attnum) FROM pg_constraint pk
        JOIN pg_attribute k ON k.attrelid = pk.conrelid AND k.attnum = ANY (pk.conkey)
        WHERE pk.conrelid = c.conrelid AND pk.contype = 'p') AS key_columns
FROM pg_constraint c
JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
JOIN pg_namespace n ON n.oid = (SELECT relnamespace FROM pg_class WHERE oid = c.conrelid)
WHERE c.contype = 'f' AND c.confrelid = 'core.person'::regclass AND n.nspname = 'core'
  AND array_length(c.conkey, 1) = 1
ORDER BY 1, 2
