-- Core uuid columns named like a person id (or merged_into) with no foreign key to core.person: a merge
-- would not move them.
SELECT c.table_schema || '.' || c.table_name AS table_name, c.column_name
FROM information_schema.columns c
JOIN information_schema.tables t USING (table_schema, table_name)
WHERE c.table_schema = 'core' AND t.table_type = 'BASE TABLE' AND c.data_type = 'uuid'
  AND (c.column_name LIKE '%%person_id' OR c.column_name = 'merged_into')
  AND (c.table_name, c.column_name) <> ('person', 'person_id')
  AND NOT EXISTS (
      SELECT 1 FROM pg_constraint f
      JOIN pg_attribute a ON a.attrelid = f.conrelid AND a.attnum = f.conkey[1]
      WHERE f.contype = 'f' AND f.confrelid = 'core.person'::regclass
        AND f.conrelid = (c.table_schema || '.' || c.table_name)::regclass AND a.attname = c.column_name)
ORDER BY 1, 2
