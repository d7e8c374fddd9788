-- 0020 value-free reasons (issue 15, gaps left after 0017-0019).
--
-- ops.quarantine.reason is read by the staff roles (viewer, editor, finance: column grants of 0018) and shown
-- by the data-health page and the Slack quarantine alert, but it quoted the value a check refused (a learner's
-- impossible birth date, the source id of a learner or contact, which some sources key by email). From here
-- on the reason names the rule and the field only ("impossible date in dateofbirth"), and the value goes to
-- ops.quarantine.reason_value, which (like the payload) only the roles that read the record's columns in core
-- may read: admin and the pipeline (cdp_loader). The staff roles' column grants of 0018 do not name it, so
-- they cannot; the table-level grants of admin, loader and the definer owner cover it.

ALTER TABLE ops.quarantine ADD COLUMN reason_value text;
COMMENT ON COLUMN ops.quarantine.reason IS
    'Why the record was held back: the rule and the field, never the record''s values (staff roles read it).';
COMMENT ON COLUMN ops.quarantine.reason_value IS
    'The value the rule refused (or the ids it names), granted like payload: only to who reads the record.';

-- Existing rows: the reasons written before this revision are rewritten into the texts the code writes now
-- (so that the next sync recognises a record already waiting and does not queue it twice), and what they
-- quoted moves to reason_value. Patterns are matched from the most specific to the generic; a reason that
-- none matches and that still looks like it quotes something keeps its value-free class (ops.reason_class's
-- rules, inlined: the definitions are applied after the revisions) and its whole former text in reason_value.
-- regexp_matches (set-returning: no row when nothing matches); ON CONFLICT keeps the first, most specific match.
CREATE TEMP TABLE reason_rewrite (quarantine_id bigint PRIMARY KEY, reason text NOT NULL, reason_value text)
    ON COMMIT DROP;

-- Ids the stream SQL named: unknown parents (learner, course, volunteer, contact, charge, refund).
INSERT INTO reason_rewrite
SELECT q.quarantine_id,
       'unknown ' || m[1] || ': the ' || m[2] || ' in '
       || CASE
              WHEN m[1] = 'learner' AND q.source = 'typeform' THEN 'hidden.learner_id'
              WHEN m[1] = 'learner' AND q.source = 'zigpoll' THEN 'metadata.moodle_user_id'
              WHEN m[1] = 'learner' THEN 'userid'
              WHEN m[1] = 'course' AND q.stream = 'course_completions' THEN 'course'
              WHEN m[1] = 'course' THEN 'courseid'
              WHEN m[1] = 'volunteer' THEN 'user_id'
              WHEN m[1] = 'contact' THEN 'npsp__Contact__c'
              WHEN m[1] = 'charge' AND q.stream = 'refunds' THEN 'charge'
              ELSE 'source'
          END
       || ' is not in the warehouse' || coalesce(m[4], ''),
       m[3]
FROM ops.quarantine q,
     regexp_matches(q.reason, '^unknown (learner|course|volunteer|contact|charge|refund): '
                            '(moodle user|moodle course|galaxy user|salesforce contact|stripe charge|stripe refund) '
                            '(.*) is not in the warehouse( yet)?$') AS m
ON CONFLICT (quarantine_id) DO NOTHING;

INSERT INTO reason_rewrite
SELECT q.quarantine_id,
       'unknown opportunity: the salesforce opportunity in npsp__Opportunity__c has no gift in the warehouse yet',
       m[1]
FROM ops.quarantine q,
     regexp_matches(q.reason, '^unknown opportunity: salesforce opportunity (.*) has no gift in the warehouse yet$') AS m
ON CONFLICT (quarantine_id) DO NOTHING;

INSERT INTO reason_rewrite
SELECT q.quarantine_id,
       'duplicate soft credit: the same person, gift and role are already credited by another soft credit', m[1]
FROM ops.quarantine q,
     regexp_matches(q.reason, '^duplicate soft credit: the same person, gift and role are already credited by (.*)$')
         AS m
ON CONFLICT (quarantine_id) DO NOTHING;

INSERT INTO reason_rewrite
SELECT q.quarantine_id,
       'no processor donation yet: its financial transaction is not in core.donation (its Stripe charge'
       || ' has not synced, or is quarantined)',
       m[1]
FROM ops.quarantine q,
     regexp_matches(q.reason, '^no processor donation yet: financial transaction (.*) is not in core\.donation ') AS m
ON CONFLICT (quarantine_id) DO NOTHING;

INSERT INTO reason_rewrite
SELECT q.quarantine_id, 'financial transaction already the gift of another opportunity', m[1] || ' ' || m[2]
FROM ops.quarantine q,
     regexp_matches(q.reason, '^financial transaction (.*) is already the gift of opportunity (.*)$') AS m
ON CONFLICT (quarantine_id) DO NOTHING;

INSERT INTO reason_rewrite
SELECT q.quarantine_id, 'financial transaction also claimed by another opportunity in the same batch',
       m[1] || ' ' || m[2]
FROM ops.quarantine q,
     regexp_matches(q.reason, '^financial transaction (.*) is also claimed by opportunity (.*) in the same batch$') AS m
ON CONFLICT (quarantine_id) DO NOTHING;

INSERT INTO reason_rewrite
SELECT q.quarantine_id, 'refund currency differs from its charge''s', m[1] || ' ' || m[2]
FROM ops.quarantine q, regexp_matches(q.reason, '^refund currency (.*) differs from its charge''s (.*)$') AS m
ON CONFLICT (quarantine_id) DO NOTHING;

-- The legacy load's (revision 0006's phase 1).
INSERT INTO reason_rewrite
SELECT q.quarantine_id, 'learner in learner_id was not loaded (its LMS row waits in ops.legacy_review)', m[1]
FROM ops.quarantine q,
     regexp_matches(q.reason, '^learner (.*) was not loaded \(its LMS row waits in ops\.legacy_review\)$') AS m
ON CONFLICT (quarantine_id) DO NOTHING;

INSERT INTO reason_rewrite
SELECT q.quarantine_id, 'amount is not exact in its currency''s minor units',
       (q.payload ->> 'amount') || ' ' || m[1] || ' (exponent ' || m[2] || ')'
FROM ops.quarantine q,
     regexp_matches(q.reason, '^amount is not exact in (\S+) minor units \(exponent (\d+)\)$') AS m
ON CONFLICT (quarantine_id) DO NOTHING;

-- Typeform's answer of an unexpected type: the type it had.
INSERT INTO reason_rewrite
SELECT q.quarantine_id, m[1], m[2]
FROM ops.quarantine q, regexp_matches(q.reason, '^(answer \S+ has no value of its type) (.*)$') AS m
ON CONFLICT (quarantine_id) DO NOTHING;

-- The validators' (cdp.sources.validation): "unknown value|currency <repr> in <path>", and "<reason>: <repr>".
INSERT INTO reason_rewrite
SELECT q.quarantine_id, m[1] || m[3], m[2]
FROM ops.quarantine q,
     regexp_matches(q.reason, '^(.*unknown (?:value|currency)) (.*)( in \S+)$') AS m
ON CONFLICT (quarantine_id) DO NOTHING;

INSERT INTO reason_rewrite
SELECT q.quarantine_id, m[1], m[2]
FROM ops.quarantine q,
     regexp_matches(q.reason, '^(.*?): ((?:[''"\[{(]|-?[0-9]|None\M|True\M|False\M|[A-Za-z_.]+\().*)$') AS m
ON CONFLICT (quarantine_id) DO NOTHING;

-- Anything else that still quotes: its class, and the whole former text apart.
INSERT INTO reason_rewrite
SELECT q.quarantine_id, regexp_replace(q.reason, '''[^'']*''|"[^"]*"', '…', 'g'), q.reason
FROM ops.quarantine q
WHERE q.reason ~ '''[^'']*''|"[^"]*"'
ON CONFLICT (quarantine_id) DO NOTHING;

-- Moodle's birth date was checked under the name "value" (its custom field's); it is "dateofbirth" now.
UPDATE reason_rewrite w SET reason = replace(w.reason, 'impossible date in value', 'impossible date in dateofbirth')
FROM ops.quarantine q
WHERE q.quarantine_id = w.quarantine_id AND q.source = 'moodle' AND q.stream = 'users'
  AND w.reason LIKE '%impossible date in value%';
INSERT INTO reason_rewrite
SELECT q.quarantine_id, replace(q.reason, 'impossible date in value', 'impossible date in dateofbirth'), NULL
FROM ops.quarantine q
WHERE q.source = 'moodle' AND q.stream = 'users' AND q.reason LIKE '%impossible date in value%'
ON CONFLICT (quarantine_id) DO NOTHING;

UPDATE ops.quarantine q SET reason = w.reason, reason_value = w.reason_value
FROM reason_rewrite w
WHERE w.quarantine_id = q.quarantine_id;

-- CRM refusals: ops.crm_push_error.message is the CRM's own text, with the values we sent blanked out only
-- where they recur exactly (cdp.crm.plan.redact): a CRM that quotes a value changed in case or format (an
-- email upper-cased, a phone re-formatted, "duplicate value found: ...") still names the person's data, beside
-- their person id. Staff keep what they act on (the code, the fields refused, the counts and the runs); the
-- message is for the roles that read the person's columns in core (admin, the pipeline that writes it).
REVOKE SELECT ON ops.crm_push_error FROM cdp_viewer, cdp_editor, cdp_finance;
GRANT SELECT (error_id, person_id, error_code, fields, attempts, first_run_id, last_run_id, first_failed_at,
              last_failed_at, resolved_at, resolved_run_id)
    ON ops.crm_push_error TO cdp_viewer, cdp_editor, cdp_finance;

-- Refunds are reconciled like donations (cdp finance reconcile): since 0017 nobody but the sync changes a
-- donation's money; a refund's amount, status and charge were still open to finance (0005) and admin. Only the
-- sync (cdp_loader) writes them now, as 0017 did for donations (core.refund has no correction path: a wrong
-- refund is corrected at the processor and synced). The role matrix test fails on any grant that widens this.
REVOKE UPDATE ON core.refund FROM cdp_finance, cdp_admin;
