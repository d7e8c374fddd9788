-- Rows now on the survivor of a merge that came in through one of the absorbed person's source identities
-- (read from the row itself or from the raw payload it was built from): on unmerge they go back to the
-- absorbed person, including rows that syncs attached after the merge. One branch per synced table and
-- person column; `cdp.identity.warehouse.lineage_columns()` lists the columns these branches cover, and
-- tests/identity/test_lineage.py fails when a core column pointing to core.person is neither covered nor
-- listed as written by merges only. A new stream whose rows point to a person adds a branch here.
--
-- The identities are the absorbed person's at the time of the merge, plus identities that syncs derived
-- from them since (a Zigpoll participant is mapped to the person of its Moodle user).
-- Parameters: survivor (uuid), identities (jsonb array of {source, source_record_id}).
WITH given AS (
    SELECT i.source, i.source_record_id
    FROM jsonb_to_recordset(%(identities)s::jsonb) AS i(source text, source_record_id text)
), derived AS (
    -- Zigpoll participants mapped (zigpoll__participants.sql) through metadata.moodle_user_id.
    SELECT m.source, m.source_record_id
    FROM core.person_source_id m
    CROSS JOIN LATERAL (SELECT payload FROM raw.records r
                        WHERE r.source = 'zigpoll' AND r.stream = 'participants'
                          AND r.source_record_id = m.source_record_id
                        ORDER BY r.raw_id DESC LIMIT 1) r
    JOIN given g ON g.source = 'moodle.user' AND g.source_record_id = r.payload #>> '{metadata,moodle_user_id}'
    WHERE m.person_id = %(survivor)s AND m.source = 'zigpoll.participant'
), identities AS (
    SELECT source, source_record_id FROM given
    UNION
    SELECT source, source_record_id FROM derived
), lineage AS (
    SELECT 'core.person_source_id' AS table_name, 'person_id' AS column_name,
           jsonb_build_object('source', d.source, 'source_record_id', d.source_record_id) AS row_key,
           'moodle.user' AS person_source, r.payload #>> '{metadata,moodle_user_id}' AS person_record_id
    FROM derived d
    CROSS JOIN LATERAL (SELECT payload FROM raw.records r
                        WHERE r.source = 'zigpoll' AND r.stream = 'participants'
                          AND r.source_record_id = d.source_record_id
                        ORDER BY r.raw_id DESC LIMIT 1) r
    UNION ALL
    SELECT 'core.enrollment', 'person_id',
           jsonb_build_object('enrollment_id', e.enrollment_id),
           'moodle.user', r.payload ->> 'userid'
    FROM core.enrollment e
    CROSS JOIN LATERAL (SELECT payload FROM raw.records r
                        WHERE r.source = 'moodle' AND r.stream = 'enrollments'
                          AND r.source_record_id = e.source_record_id
                        ORDER BY r.raw_id DESC LIMIT 1) r
    WHERE e.person_id = %(survivor)s AND e.source = 'moodle'
    UNION ALL
    SELECT 'core.course_completion', 'person_id',
           jsonb_build_object('completion_id', c.completion_id),
           'moodle.user', r.payload ->> 'userid'
    FROM core.course_completion c
    CROSS JOIN LATERAL (SELECT payload FROM raw.records r
                        WHERE r.source = 'moodle' AND r.stream = 'course_completions'
                          AND r.source_record_id = c.source_record_id
                        ORDER BY r.raw_id DESC LIMIT 1) r
    WHERE c.person_id = %(survivor)s AND c.source = 'moodle'
    UNION ALL
    SELECT 'core.donation', 'person_id',
           jsonb_build_object('donation_id', d.donation_id),
           'stripe.billing',
           coalesce(r.payload ->> 'customer', lower(trim(r.payload #>> '{billing_details,email}')))
    FROM core.donation d
    CROSS JOIN LATERAL (SELECT payload FROM raw.records r
                        WHERE r.source = 'stripe' AND r.stream = 'charges'
                          AND r.source_record_id = d.source_record_id
                        ORDER BY r.raw_id DESC LIMIT 1) r
    WHERE d.person_id = %(survivor)s AND d.source = 'stripe'
    UNION ALL
    -- NPSP soft credits name the credited Salesforce contact.
    SELECT 'core.donation_soft_credit', 'person_id',
           jsonb_build_object('donation_id', s.donation_id, 'person_id', s.person_id, 'role', s.role),
           'salesforce.contact', r.payload ->> 'npsp__Contact__c'
    FROM core.donation_soft_credit s
    CROSS JOIN LATERAL (SELECT payload FROM raw.records r
                        WHERE r.source = 'salesforce' AND r.stream = 'npsp__Partial_Soft_Credit__c'
                          AND r.source_record_id = s.source_record_id
                        ORDER BY r.raw_id DESC LIMIT 1) r
    WHERE s.person_id = %(survivor)s AND s.source = 'salesforce'
    UNION ALL
    -- NPSP's contact-role soft credits (OpportunityContactRole) name the credited contact too.
    SELECT 'core.donation_soft_credit', 'person_id',
           jsonb_build_object('donation_id', s.donation_id, 'person_id', s.person_id, 'role', s.role),
           'salesforce.contact', r.payload ->> 'ContactId'
    FROM core.donation_soft_credit s
    CROSS JOIN LATERAL (SELECT payload FROM raw.records r
                        WHERE r.source = 'salesforce' AND r.stream = 'OpportunityContactRole'
                          AND r.source_record_id = s.source_record_id
                        ORDER BY r.raw_id DESC LIMIT 1) r
    WHERE s.person_id = %(survivor)s AND s.source = 'salesforce.contact_role'
    UNION ALL
    -- A contact's organisation account (salesforce__account_links.sql); a membership the survivor also
    -- holds through one of its own contacts stays with the survivor.
    SELECT DISTINCT 'core.organization_membership', 'person_id',
           jsonb_build_object('organization_id', om.organization_id, 'person_id', om.person_id,
                              'role', om.role, 'cohort', om.cohort),
           'salesforce.contact', l.contact_source_id
    FROM core.organization_membership om
    JOIN core.organization o ON o.organization_id = om.organization_id
    JOIN core.crm_account_contact l ON l.source = o.source AND l.account_source_id = o.source_record_id
    WHERE om.person_id = %(survivor)s AND om.role = 'contact' AND l.source = 'salesforce'
      AND NOT EXISTS (
          SELECT 1 FROM core.crm_account_contact own
          JOIN core.person_source_id m ON m.source = 'salesforce.contact' AND m.source_record_id = own.contact_source_id
          WHERE own.source = l.source AND own.account_source_id = l.account_source_id
            AND m.person_id = %(survivor)s
            AND NOT EXISTS (SELECT 1 FROM identities i
                            WHERE i.source = m.source AND i.source_record_id = m.source_record_id))
    UNION ALL
    -- Consent statements: the series key names the source record that made the statement.
    SELECT 'core.consent', 'person_id',
           jsonb_build_object('consent_id', c.consent_id),
           'moodle.user', split_part(c.statement_key, ':', 2)
    FROM core.consent c
    WHERE c.person_id = %(survivor)s AND c.statement_key LIKE 'moodle.user:%%'
    UNION ALL
    SELECT 'core.consent', 'person_id',
           jsonb_build_object('consent_id', c.consent_id),
           'zigpoll.participant', substr(c.statement_key, length('zigpoll.participant:') + 1)
    FROM core.consent c
    WHERE c.person_id = %(survivor)s AND c.statement_key LIKE 'zigpoll.participant:%%'
    UNION ALL
    SELECT 'core.consent', 'person_id',
           jsonb_build_object('consent_id', c.consent_id),
           'surveymonkey.contact', substr(c.statement_key, length('surveymonkey.contact:') + 1)
    FROM core.consent c
    WHERE c.person_id = %(survivor)s AND c.statement_key LIKE 'surveymonkey.contact:%%'
    UNION ALL
    SELECT 'core.consent', 'person_id',
           jsonb_build_object('consent_id', c.consent_id),
           'moodle.user', r.payload #>> '{hidden,learner_id}'
    FROM core.consent c
    CROSS JOIN LATERAL (SELECT payload FROM raw.records r
                        WHERE r.source = 'typeform' AND r.stream = 'responses'
                          AND r.source_record_id = substr(c.statement_key, length('typeform.response:') + 1)
                        ORDER BY r.raw_id DESC LIMIT 1) r
    WHERE c.person_id = %(survivor)s AND c.statement_key LIKE 'typeform.response:%%'
    UNION ALL
    -- Survey responses name their respondent: a Moodle user (Typeform), a Zigpoll participant, or the
    -- address (sha256) of a SurveyMonkey contact.
    SELECT 'core.survey_response', 'person_id',
           jsonb_build_object('survey_response_id', s.survey_response_id),
           CASE s.source WHEN 'typeform' THEN 'moodle.user' WHEN 'surveymonkey' THEN 'surveymonkey.contact_email'
                         ELSE 'zigpoll.participant' END, s.respondent_ref
    FROM core.survey_response s
    WHERE s.person_id = %(survivor)s AND s.source IN ('typeform', 'zigpoll', 'surveymonkey')
    UNION ALL
    -- ReferralHero: a subscriber is the referred person, its referred_by the referrer.
    SELECT 'core.referral', 'referred_person_id',
           jsonb_build_object('referral_id', r.referral_id),
           'referralhero.subscriber', r.source_record_id
    FROM core.referral r
    WHERE r.referred_person_id = %(survivor)s AND r.source = 'referralhero'
    UNION ALL
    SELECT 'core.referral', 'referrer_person_id',
           jsonb_build_object('referral_id', r.referral_id),
           'referralhero.subscriber', r.referrer_source_id
    FROM core.referral r
    WHERE r.referrer_person_id = %(survivor)s AND r.source = 'referralhero'
    UNION ALL
    SELECT 'core.reward', 'person_id',
           jsonb_build_object('reward_id', w.reward_id),
           'referralhero.subscriber', r.source_record_id
    FROM core.reward w
    JOIN core.referral r ON r.referral_id = w.referral_id
    WHERE w.person_id = %(survivor)s AND w.source = 'referralhero'
    UNION ALL
    -- Galaxy Digital (migration phase 4): a volunteer is a Galaxy user; its shifts and hours follow it.
    SELECT 'core.volunteer', 'person_id',
           jsonb_build_object('volunteer_id', v.volunteer_id),
           'galaxy.user', v.source_record_id
    FROM core.volunteer v
    WHERE v.person_id = %(survivor)s AND v.source = 'galaxy'
    UNION ALL
    SELECT 'core.volunteer_shift', 'person_id',
           jsonb_build_object('volunteer_shift_id', s.volunteer_shift_id),
           'galaxy.user', v.source_record_id
    FROM core.volunteer_shift s
    JOIN core.volunteer v USING (volunteer_id)
    WHERE s.person_id = %(survivor)s AND s.source = 'galaxy'
    UNION ALL
    SELECT 'core.volunteer_hours', 'person_id',
           jsonb_build_object('volunteer_hours_id', h.volunteer_hours_id),
           'galaxy.user', v.source_record_id
    FROM core.volunteer_hours h
    JOIN core.volunteer v USING (volunteer_id)
    WHERE h.person_id = %(survivor)s AND h.source = 'galaxy'
    UNION ALL
    -- Zendesk: a ticket's requester is a Zendesk user (mapped as zendesk.user when the sync resolved it).
    SELECT 'core.support_ticket', 'person_id',
           jsonb_build_object('support_ticket_id', t.support_ticket_id),
           'zendesk.user', t.requester_source_id
    FROM core.support_ticket t
    WHERE t.person_id = %(survivor)s AND t.source = 'zendesk'
    UNION ALL
    -- CRM Contacts deleted or merged away (0022): the removed Contact and a merge's surviving Contact.
    SELECT 'core.crm_record_removal', 'person_id',
           jsonb_build_object('source', r.source, 'sobject', r.sobject, 'source_record_id', r.source_record_id),
           'salesforce.contact', r.source_record_id
    FROM core.crm_record_removal r
    WHERE r.person_id = %(survivor)s AND r.source = 'salesforce' AND r.sobject = 'Contact'
    UNION ALL
    SELECT 'core.crm_record_removal', 'master_person_id',
           jsonb_build_object('source', r.source, 'sobject', r.sobject, 'source_record_id', r.source_record_id),
           'salesforce.contact', r.master_record_id
    FROM core.crm_record_removal r
    WHERE r.master_person_id = %(survivor)s AND r.source = 'salesforce' AND r.sobject = 'Contact'
      AND r.master_record_id IS NOT NULL
)
SELECT l.table_name, l.column_name, l.row_key
FROM lineage l
JOIN identities i ON i.source = l.person_source AND i.source_record_id = l.person_record_id;
