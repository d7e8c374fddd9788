-- 0032 The funder report (issue 19, parts 3 and 4).
--
-- A third survey measure, 'skills': the question that asks whether the course improved the respondent's skills
-- ("% of learners reporting skills improvement"). Its answer is a 1-5 agreement scale (4-5 positive, 1-3 not)
-- or a yes/no answer (Typeform's yes_no: true positive); mart.fund_impact_rows reads it as skills_improved.
-- Which question of which tool carries it is configuration, like NPS and satisfaction: admin maps it in
-- ops.survey_measure (Typeform field ref, Zigpoll slide id or title); the default is a question 'skills'.

ALTER TABLE ops.survey_measure DROP CONSTRAINT survey_measure_measure_check;
ALTER TABLE ops.survey_measure
    ADD CONSTRAINT survey_measure_measure_check CHECK (measure IN ('nps', 'satisfaction', 'skills'));
COMMENT ON TABLE ops.survey_measure IS
    'Which question carries a score: a Typeform field ref, a Zigpoll slide id or title, a SurveyMonkey question '
    'heading. nps: 0-10 (promoters 9-10, detractors 0-6); satisfaction: 1-5 (satisfied 4-5); skills: did the '
    'course improve your skills, 1-5 (positive 4-5) or yes/no (yes positive).';
INSERT INTO ops.survey_measure (source, question, measure) VALUES
    ('typeform', 'skills', 'skills'), ('zigpoll', 'skills', 'skills')
ON CONFLICT (source, question) DO NOTHING;
