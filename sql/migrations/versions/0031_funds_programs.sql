-- 0031 Funds and programs (issue 19, parts 1 and 2).
--
-- Funds as the CRM keeps them: NPSP's General Accounting Units (npsp__General_Accounting_Unit__c) land in
-- core.fund, its Allocations (npsp__Allocation__c) in core.donation_allocation: a gift's allocation (by
-- opportunity), or a template NPSP copies onto new gifts (by recurring donation, by campaign). Both are read
-- with queryAll: a record deleted in the CRM keeps its row here with deleted_at (audited), never vanishes.
-- An allocation holds an amount or a percent of its gift, as the CRM says; the resolved cents and the
-- reconciliation to the gift are views (sql/definitions/ops/allocation_amount.sql, gift_allocation.sql).
--
-- Programs tied to funds: staff say which program a course belongs to and which funds pay for a program, each
-- from a date ([valid_from, valid_to)); a change is a request that another login approves
-- (ops.request_program_change / ops.approve_program_change, sql/definitions/ops/program_change.sql), like a
-- donation correction, and every step is an audit event. Neither holds personal data: no person column, so
-- the erasure has nothing to blank here.

CREATE TABLE core.fund (
    fund_id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    source           text NOT NULL,
    source_record_id text NOT NULL,               -- the GAU's Salesforce Id
    name             text NOT NULL,
    active           boolean NOT NULL DEFAULT true,  -- npsp__Active__c: open for new allocations
    deleted_at       timestamptz,                  -- deleted in the CRM (queryAll: IsDeleted)
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source, source_record_id)
);
COMMENT ON TABLE core.fund IS
    'Funds: NPSP General Accounting Units as the CRM keeps them (0031); deleted ones kept with deleted_at.';

CREATE TABLE core.donation_allocation (
    allocation_id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    fund_id               uuid NOT NULL REFERENCES core.fund,
    opportunity_id        text,       -- npsp__Opportunity__c: a gift's allocation
    donation_id           uuid REFERENCES core.donation,  -- that gift here, when it has landed
    recurring_donation_id text,       -- npsp__Recurring_Donation__c: a template for the schedule's gifts
    campaign_id           text,       -- npsp__Campaign__c: a template for the campaign's gifts
    crm_amount_minor      bigint,     -- npsp__Amount__c in cents, as the CRM stored it
    percent               numeric(9, 6) CHECK (percent >= 0),  -- npsp__Percent__c (percent allocations)
    currency              char(3) CHECK (currency ~ '^[A-Z]{3}$'),
    source                text NOT NULL,
    source_record_id      text NOT NULL,
    deleted_at            timestamptz,
    updated_at            timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source, source_record_id),
    CHECK (num_nonnulls(opportunity_id, recurring_donation_id, campaign_id) >= 1),
    CHECK (crm_amount_minor IS NOT NULL OR percent IS NOT NULL)
);
CREATE INDEX donation_allocation_donation ON core.donation_allocation (donation_id);
CREATE INDEX donation_allocation_fund ON core.donation_allocation (fund_id);
COMMENT ON TABLE core.donation_allocation IS
    'NPSP Allocations (0031): a gift''s (opportunity_id), or a template by recurring donation or campaign.';

CREATE TABLE core.program (
    program_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (length(trim(name)) > 0),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- ---------------------------------------------------------------------------------------------------------
-- Requests to change what a course belongs to, or who pays for a program, and their decisions.
-- ---------------------------------------------------------------------------------------------------------
CREATE TABLE ops.program_change (
    change_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind           text NOT NULL CHECK (kind IN ('course', 'funds')),
    program        text NOT NULL,                 -- the program's name (created when first approved)
    course_id      uuid REFERENCES core.course,   -- kind 'course': the course put in the program
    funds          jsonb,                         -- kind 'funds': {fund_id: share}, shares summing to 1
    valid_from     date NOT NULL,
    reason         text NOT NULL CHECK (length(trim(reason)) > 0),
    requested_by   text NOT NULL,
    requested_role text NOT NULL,
    requested_at   timestamptz NOT NULL DEFAULT now(),
    status         text NOT NULL DEFAULT 'requested' CHECK (status IN ('requested', 'applied', 'rejected')),
    decided_by     text,
    decided_role   text,
    decided_at     timestamptz,
    decision_note  text,
    CHECK ((kind = 'course') = (course_id IS NOT NULL)),
    CHECK ((kind = 'funds') = (funds IS NOT NULL)),
    CONSTRAINT program_change_four_eyes CHECK (decided_by IS NULL OR decided_by <> requested_by)
);

-- A course's program, and a program's funds with their shares, over [valid_from, valid_to).
CREATE TABLE core.program_course (
    course_id  uuid NOT NULL REFERENCES core.course,
    program_id bigint NOT NULL REFERENCES core.program,
    valid_from date NOT NULL,
    valid_to   date,
    change_id  bigint NOT NULL REFERENCES ops.program_change,
    PRIMARY KEY (course_id, valid_from),
    CHECK (valid_to IS NULL OR valid_to > valid_from)
);

CREATE TABLE core.program_fund (
    program_id bigint NOT NULL REFERENCES core.program,
    fund_id    uuid NOT NULL REFERENCES core.fund,
    share      numeric(7, 6) NOT NULL CHECK (share > 0 AND share <= 1),
    valid_from date NOT NULL,
    valid_to   date,
    change_id  bigint NOT NULL REFERENCES ops.program_change,
    PRIMARY KEY (program_id, fund_id, valid_from),
    CHECK (valid_to IS NULL OR valid_to > valid_from)
);

SELECT audit.track_changes('core.fund'::regclass, 'source_record_id');
SELECT audit.track_changes('core.donation_allocation'::regclass, 'source_record_id');
SELECT audit.track_changes('core.program'::regclass, 'program_id');
SELECT audit.track_changes('core.program_course'::regclass, 'course_id');
SELECT audit.track_changes('core.program_fund'::regclass, 'program_id');
SELECT audit.track_changes('ops.program_change'::regclass, 'change_id');

REVOKE ALL ON core.fund, core.donation_allocation, core.program, core.program_course, core.program_fund,
              ops.program_change FROM PUBLIC;
-- The sync lands funds and allocations (soft deletes only: no DELETE).
GRANT SELECT, INSERT, UPDATE ON core.fund, core.donation_allocation TO cdp_loader;
-- Who reads money reads where it goes; programs are read by the same roles.
GRANT SELECT ON core.fund, core.donation_allocation, core.program, core.program_course, core.program_fund
    TO cdp_viewer, cdp_editor, cdp_admin, cdp_finance;
GRANT SELECT ON ops.program_change TO cdp_editor, cdp_admin, cdp_finance;
-- The auditor's evidence pack (0029) lists every program change with who requested and who decided it.
GRANT SELECT ON ops.program_change TO cdp_evidence;
-- Programs and their mappings are written only by the request/decision functions (owner cdp_definer).
GRANT SELECT, INSERT, UPDATE ON core.program, core.program_course, core.program_fund, ops.program_change
    TO cdp_definer;
GRANT SELECT ON core.fund, core.donation_allocation TO cdp_definer;  -- as 0017 gave it every table
