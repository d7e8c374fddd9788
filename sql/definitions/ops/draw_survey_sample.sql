-- Today's definition, re-applied by `cdp migrate` after the revisions: change it here (sql/README.md).
-- Added for revision 0030 (the survey invitation ledger; issue 18).

-- One week's sample of course completers for one survey, drawn once: returns what was drawn (a jsonb summary;
-- the people are in ops.survey_invitation). A second call for the same survey and week draws nothing and
-- returns the first draw's summary with "created": false, so a re-run of the week invites nobody new.
--
-- Who: people (merged records rolled up to their survivor) with a core.course_completion in the ISO week
-- p_week (Monday, UTC), each once, in the stratum of the first course they completed that week; only those in
-- mart.outreach_eligible for purpose 'surveys' (consent, age and parental consent are that view's rules), and
-- only those with no invitation of any survey, tool or kind within p_quiet_days: neither for a sample week
-- that near this one (earlier or later: a backfill of an old week skips people already asked in the weeks
-- around it) nor made in the last p_quiet_days (a backfill sends now, so what was sent recently counts too).
-- How many: round(p_fraction x frame) in all, shared among the courses by largest remainder (Hamilton), so
-- each course gets its quota rounded down or up and the total is exact; equal remainders go by the seed.
-- Which: per course, the first by sha256(seed || person id), the seed being sha256(survey key | week): the
-- same week and survey always give the same order, another week a fresh one.
--
-- SECURITY DEFINER (owner cdp_definer): the eligibility, the quiet period and the insert are one statement
-- under one lock, and the callers hold EXECUTE only (revision 0030 says why).
CREATE OR REPLACE FUNCTION ops.draw_survey_sample(
    p_survey_key text, p_tool text, p_week date, p_fraction numeric DEFAULT 0.10, p_quiet_days integer DEFAULT 90,
    p_run_id text DEFAULT NULL
) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    drawn ops.survey_draw;
    seed text;
BEGIN
    IF p_week IS NULL OR pg_catalog.date_part('isodow', p_week) <> 1 THEN
        RAISE EXCEPTION 'sample week % is not the Monday that starts an ISO week', p_week
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_fraction IS NULL OR p_fraction <= 0 OR p_fraction > 1 THEN
        RAISE EXCEPTION 'sample fraction % is not in (0, 1]', p_fraction USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_quiet_days IS NULL OR p_quiet_days < 0 THEN
        RAISE EXCEPTION 'quiet period % days is negative', p_quiet_days USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- One draw at a time, whatever the survey: the quiet period spans every survey and tool.
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('cdp.surveys:draw'));

    SELECT * INTO drawn FROM ops.survey_draw d WHERE d.survey_key = p_survey_key AND d.sample_week = p_week;
    IF FOUND THEN
        RETURN pg_catalog.to_jsonb(drawn) || pg_catalog.jsonb_build_object('created', false);
    END IF;

    seed := pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(p_survey_key || '|' || p_week::text, 'UTF8')),
                              'hex');
    WITH completions AS MATERIALIZED (
        SELECT DISTINCT ON (coalesce(p.merged_into, c.person_id))
               coalesce(p.merged_into, c.person_id) AS person_id, c.course_id, c.completion_id
        FROM core.course_completion c
        JOIN core.person p ON p.person_id = c.person_id
        WHERE c.completed_at >= (p_week::timestamp AT TIME ZONE 'UTC')
          AND c.completed_at < ((p_week + 7)::timestamp AT TIME ZONE 'UTC')
        ORDER BY coalesce(p.merged_into, c.person_id), c.completed_at, c.course_id
    ), eligible AS MATERIALIZED (
        -- Once for all, not per completer: the view decides for everyone at once.
        SELECT DISTINCT e.person_id FROM mart.outreach_eligible e WHERE e.purpose = 'surveys'
    ), quiet AS MATERIALIZED (
        SELECT DISTINCT coalesce(ip.merged_into, i.person_id) AS person_id
        FROM ops.survey_invitation i
        JOIN core.person ip ON ip.person_id = i.person_id
        WHERE abs(i.sample_week - p_week) < p_quiet_days
           OR i.created_at > pg_catalog.now() - p_quiet_days * interval '1 day'
    ), frame AS MATERIALIZED (
        SELECT c.*, pg_catalog.sha256(pg_catalog.convert_to(seed || c.person_id::text, 'UTF8')) AS draw_order
        FROM completions c
        JOIN eligible e ON e.person_id = c.person_id
        WHERE NOT EXISTS (SELECT 1 FROM quiet q WHERE q.person_id = c.person_id)
    ), strata AS (
        SELECT f.course_id, count(*) AS frame_size,
               count(*) * round(p_fraction * (SELECT count(*) FROM frame)) / (SELECT count(*) FROM frame) AS quota
        FROM frame f
        GROUP BY f.course_id
    ), allocation AS (
        SELECT s.course_id, s.frame_size,
               floor(s.quota)::integer
               + CASE WHEN row_number() OVER (
                          ORDER BY s.quota - floor(s.quota) DESC,
                                   pg_catalog.sha256(pg_catalog.convert_to(seed || s.course_id::text, 'UTF8')))
                          <= round(p_fraction * (SELECT count(*) FROM frame))
                             - (SELECT sum(floor(x.quota)) FROM strata x)
                      THEN 1 ELSE 0 END AS sample_size
        FROM strata s
    ), picked AS (
        SELECT ranked.person_id, ranked.course_id, ranked.completion_id
        FROM (SELECT f.*, row_number() OVER (PARTITION BY f.course_id ORDER BY f.draw_order, f.person_id) AS n
              FROM frame f) ranked
        JOIN allocation a ON a.course_id = ranked.course_id
        WHERE ranked.n <= a.sample_size
    ), draw AS (
        INSERT INTO ops.survey_draw (survey_key, sample_week, kind, tool, fraction, quiet_days, draw_seed,
                                     completers, frame, sampled, strata, run_id)
        SELECT p_survey_key, p_week, 'completer_sample', p_tool, p_fraction, p_quiet_days, seed,
               (SELECT count(*) FROM completions), (SELECT count(*) FROM frame), (SELECT count(*) FROM picked),
               coalesce((SELECT pg_catalog.jsonb_object_agg(a.course_id::text, pg_catalog.jsonb_build_object(
                                    'frame', a.frame_size, 'sampled', a.sample_size))
                         FROM allocation a), '{}'::jsonb),
               p_run_id
        RETURNING *
    ), invited AS (
        INSERT INTO ops.survey_invitation (person_id, survey_key, sample_week, tool, kind, course_id, completion_id,
                                           draw_seed)
        SELECT pk.person_id, p_survey_key, p_week, p_tool, 'completer_sample', pk.course_id, pk.completion_id, seed
        FROM picked pk
        ON CONFLICT (person_id, survey_key, sample_week) DO NOTHING
        RETURNING 1
    )
    SELECT d.* INTO drawn FROM draw d, (SELECT count(*) FROM invited) AS n;

    PERFORM audit.record_event(
        'survey_sample_drawn', 'ops.survey_draw', p_survey_key || '/' || p_week::text,
        pg_catalog.jsonb_build_object('survey_key', p_survey_key, 'sample_week', p_week, 'tool', p_tool,
                                      'kind', drawn.kind, 'fraction', p_fraction, 'quiet_days', p_quiet_days,
                                      'draw_seed', seed, 'completers', drawn.completers, 'frame', drawn.frame,
                                      'sampled', drawn.sampled, 'strata', drawn.strata, 'run_id', p_run_id));
    RETURN pg_catalog.to_jsonb(drawn) || pg_catalog.jsonb_build_object('created', true);
END
$$;
REVOKE ALL ON FUNCTION ops.draw_survey_sample(text, text, date, numeric, integer, text) FROM PUBLIC;
-- The pipeline (survey_sampling's login) and the operator.
GRANT EXECUTE ON FUNCTION ops.draw_survey_sample(text, text, date, numeric, integer, text) TO cdp_loader, cdp_admin;
ALTER FUNCTION ops.draw_survey_sample(text, text, date, numeric, integer, text) OWNER TO cdp_definer;
