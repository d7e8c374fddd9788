-- 0032 The funder report (issue 19, parts 3 and 4).
--
-- A third survey measure, 'skills': the question that asks whether the course improved the respondent's skills
-- ("% of learners reporting skills improvement"). Its answer is a 1-5 agreement scale (4-5 positive, 1-3 not)
-- or a yes/no answer (Typeform's yes_no: true positive); mart.fund_impact_rows reads it as skills_improved.
-- Which question of which tool carries it is configuration: no survey names it the same way, so there is no
-- default row (and a migration writes no audit event of its own); admin maps it in ops.survey_measure, e.g.
--   INSERT INTO ops.survey_measure (source, question, measure) VALUES ('typeform', '<field ref>', 'skills');

ALTER TABLE ops.survey_measure DROP CONSTRAINT survey_measure_measure_check;
ALTER TABLE ops.survey_measure
    ADD CONSTRAINT survey_measure_measure_check CHECK (measure IN ('nps', 'satisfaction', 'skills'));
COMMENT ON TABLE ops.survey_measure IS
    'Which question carries a score: a Typeform field ref, a Zigpoll slide id or title, a SurveyMonkey question '
    'heading. nps: 0-10 (promoters 9-10, detractors 0-6); satisfaction: 1-5 (satisfied 4-5); skills: did the '
    'course improve your skills, 1-5 (positive 4-5) or yes/no (yes positive).';

-- The cdp_funder_report DAG's own role: what its login (AIRFLOW_CONN_WAREHOUSE_FUNDER_REPORT) is a member of.
-- The funder report reads the impact marts (mart.fund_impact_monthly, mart.fund_impact_rows: granted with the
-- views in sql/definitions/mart/, as the revisions do not define them), the funds, the allocations (to name an
-- allocation's audit events by its CRM Id) and five metadata columns of audit.readable_events (which audit
-- events corrected the rows behind a report; also granted in sql/definitions/): no row image, no core table
-- with people in it. It changes nothing.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cdp_funder_report') THEN
        CREATE ROLE cdp_funder_report NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
END
$$;

GRANT USAGE ON SCHEMA core, mart, audit TO cdp_funder_report;
GRANT SELECT ON core.fund, core.donation_allocation TO cdp_funder_report;
-- audit.readable_events' five columns: granted with the view in sql/definitions/audit/readable_events.sql.
-- The house anchor after each task (cdp.runtime.anchor, as the other DAG families: 0026, 0027, 0029): the
-- chain's head, nothing of the events themselves; audit.seal() (what a busy lock left unsealed) is granted in
-- sql/definitions/audit/audit_events.sql, which defines it.
GRANT SELECT (seq, hash) ON audit.audit_events TO cdp_funder_report;
