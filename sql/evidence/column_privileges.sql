-- For a grantee whose privilege on a relation covers some columns only (the letters s, i, u of the role
-- matrix), which columns: one row per grantee and relation, the columns in their table order.
-- Parameters: roles (text[]), relations (text[], names as regclass prints them).
SELECT r.rolname AS grantee,
       c.oid::regclass::text AS object,
       coalesce(array_agg(a.attname::text ORDER BY a.attnum)
                FILTER (WHERE has_column_privilege(r.oid, c.oid, a.attnum, 'SELECT')), '{}') AS select_columns,
       coalesce(array_agg(a.attname::text ORDER BY a.attnum)
                FILTER (WHERE has_column_privilege(r.oid, c.oid, a.attnum, 'INSERT')), '{}') AS insert_columns,
       coalesce(array_agg(a.attname::text ORDER BY a.attnum)
                FILTER (WHERE has_column_privilege(r.oid, c.oid, a.attnum, 'UPDATE')), '{}') AS update_columns
FROM pg_class c
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
CROSS JOIN pg_roles r
WHERE r.rolname = ANY (%(roles)s) AND c.oid::regclass::text = ANY (%(relations)s)
GROUP BY r.rolname, c.oid
ORDER BY 1, 2;
