-- 0030 The survey invitation ledger (issue 18: feedback loops).
--
-- Every invitation to a survey is recorded here once, before anything is handed to a survey tool, so that a
-- re-run or a backfill never invites anyone twice and the answers that come back can be linked to who was
-- asked (the invitation id travels as a hidden field / custom variable / metadata key `invitation_id`).
--
--   ops.survey_draw        one row per drawn sample (survey, ISO week): its seed, parameters and counts;
--   ops.survey_invitation  one row per person asked: which survey, tool, week, kind, stratum (course);
--   ops.survey_measure     which question of which tool carries a score (NPS 0-10, satisfaction 1-5).
--
-- Least privilege. The only writer of the two ledgers is ops.draw_survey_sample (sql/definitions), a SECURITY
-- DEFINER function of cdp_definer that reads the week's completions and mart.outreach_eligible (purpose
-- 'surveys') and inserts the sample in one statement. The roles that run a draw (the pipeline's cdp_loader,
-- the survey_sampling DAG's login, and cdp_admin) hold EXECUTE on it and no INSERT on the tables, so no caller,
-- whatever its code, can record an invitation for someone outside the outreach list or inside the quiet
-- period; and the caller never needs the contact details or consent statements to draw. cdp_outreach (the
-- mailing tools) keeps reading the outreach list and nothing else.
-- Part 2 (the hand-over to the survey tools) and part 3 (pulse surveys) of the issue write through functions
-- of their own: kind and phase are here for them.

CREATE TABLE ops.survey_draw (
    survey_key   text NOT NULL CHECK (survey_key ~ '^[a-z0-9][a-z0-9_.-]{0,62}$'),
    sample_week  date NOT NULL CHECK (extract(isodow FROM sample_week) = 1),
    kind         text NOT NULL CHECK (kind IN ('completer_sample', 'pulse_baseline', 'pulse')),
    tool         text NOT NULL CHECK (tool IN ('surveymonkey', 'typeform', 'zigpoll')),
    phase        text,
    fraction     numeric NOT NULL CHECK (fraction > 0 AND fraction <= 1),
    quiet_days   integer NOT NULL CHECK (quiet_days >= 0),
    draw_seed    text NOT NULL,
    completers   integer NOT NULL CHECK (completers >= 0),
    frame        integer NOT NULL CHECK (frame >= 0),
    sampled      integer NOT NULL CHECK (sampled >= 0),
    strata       jsonb NOT NULL DEFAULT '{}'::jsonb,
    run_id       text,
    drawn_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (survey_key, sample_week)
);
COMMENT ON TABLE ops.survey_draw IS
    'One drawn survey sample per survey and ISO week (Monday): seed, fraction, quiet period, and how many people '
    'completed, were eligible (frame) and were sampled, per stratum (strata: course id -> {frame, sampled}).';

CREATE TABLE ops.survey_invitation (
    invitation_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    person_id     uuid NOT NULL REFERENCES core.person,
    survey_key    text NOT NULL,
    sample_week   date NOT NULL,
    tool          text NOT NULL CHECK (tool IN ('surveymonkey', 'typeform', 'zigpoll')),
    kind          text NOT NULL CHECK (kind IN ('completer_sample', 'pulse_baseline', 'pulse')),
    phase         text,
    course_id     uuid REFERENCES core.course,
    completion_id uuid REFERENCES core.course_completion ON DELETE SET NULL,
    draw_seed     text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (survey_key, sample_week) REFERENCES ops.survey_draw,
    UNIQUE (person_id, survey_key, sample_week)
);
CREATE INDEX survey_invitation_person ON ops.survey_invitation (person_id, sample_week);
CREATE INDEX survey_invitation_week ON ops.survey_invitation (sample_week, tool);
COMMENT ON TABLE ops.survey_invitation IS
    'Who was asked to answer which survey, in which week, through which tool; kind completer_sample (the weekly '
    'sample of course completers, stratum course_id), pulse_baseline or pulse (migration phases, phase). Written '
    'only by ops.draw_survey_sample; invitation_id is the key a response carries back (hidden field invitation_id).';

CREATE TABLE ops.survey_measure (
    source     text NOT NULL CHECK (source IN ('surveymonkey', 'typeform', 'zigpoll')),
    question   text NOT NULL,
    measure    text NOT NULL CHECK (measure IN ('nps', 'satisfaction')),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, question)
);
COMMENT ON TABLE ops.survey_measure IS
    'Which question carries a score: a Typeform field ref, a Zigpoll slide id or title, a SurveyMonkey question '
    'heading. nps: 0-10 (promoters 9-10, detractors 0-6); satisfaction: 1-5 (satisfied 4-5).';
INSERT INTO ops.survey_measure (source, question, measure) VALUES
    ('typeform', 'nps', 'nps'), ('typeform', 'satisfaction', 'satisfaction'),
    ('zigpoll', 'nps', 'nps'), ('zigpoll', 'satisfaction', 'satisfaction');
SELECT audit.track_changes('ops.survey_measure', 'question');

-- The draw function's owner: reads the outreach list (the only path to who may be asked) and writes the ledgers.
GRANT USAGE ON SCHEMA mart TO cdp_definer;
GRANT SELECT ON mart.outreach_eligible TO cdp_definer;
GRANT SELECT, INSERT ON ops.survey_draw, ops.survey_invitation TO cdp_definer;
GRANT SELECT ON ops.survey_measure TO cdp_definer;

-- Readers: the pipeline (the DAG returns the sample and checks it), staff (ids, weeks, courses: no contact
-- details, no answers). Nobody inserts, updates or deletes but the function; admin edits the score mapping.
GRANT SELECT ON ops.survey_draw, ops.survey_invitation, ops.survey_measure
    TO cdp_loader, cdp_viewer, cdp_editor, cdp_admin;
GRANT INSERT, UPDATE, DELETE ON ops.survey_measure TO cdp_admin;
