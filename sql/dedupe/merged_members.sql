-- Each person merged away with the root it now stands as (following chains of merges).
WITH RECURSIVE chain AS (
  SELECT person_id, merged_into AS root FROM core.person WHERE merged_into IS NOT NULL
  UNION ALL SELECT c.person_id, p.merged_into FROM chain c
  JOIN core.person p ON p.person_id = c.root WHERE p.merged_into IS NOT NULL
) SELECT person_id::text AS person_id, root::text AS root FROM chain
