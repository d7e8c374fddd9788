-- Today's definition, re-applied by `cdp migrate` after the revisions: change it here (sql/README.md).
-- Added for revision 0030 (survey scores; issue 18).

-- The number an answer stands for, as each tool lands it in core.survey_response.answers: a number (Typeform's
-- number, opinion_scale and rating), a text or a choice label that starts with one ("9", "10 - Extremely
-- likely": SurveyMonkey's choice texts, Zigpoll's response), or a list of those (SurveyMonkey) whose first is
-- taken. Anything else is NULL: not a score, never a zero.
CREATE OR REPLACE FUNCTION ops.survey_answer_number(p_value jsonb) RETURNS numeric
    LANGUAGE sql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE jsonb_typeof(v)
               WHEN 'number' THEN (v #>> '{}')::numeric
               WHEN 'string' THEN substring(v #>> '{}' FROM '^\s*(-?[0-9]+(?:\.[0-9]+)?)(?:\s|$|[^0-9.])')::numeric
           END
    FROM (SELECT CASE jsonb_typeof(p_value)
                     WHEN 'array' THEN p_value -> 0
                     WHEN 'object' THEN coalesce(p_value -> 'label', p_value -> 'value')
                     ELSE p_value
                 END) AS answer(v)
$$;
-- No grants: PostgreSQL's default (EXECUTE for PUBLIC); it reads nothing.
