-- Tables for the remaining synced streams. The finance tables below are the contract that the sync
-- (which fills them) and the reconciliation (which reads them) share: add columns, never rename.

-- When the person's details were last stated at a source: a record that arrives later but was changed
-- earlier (a backfill, a late page) fills gaps and never overwrites a newer statement.
ALTER TABLE core.person ADD COLUMN values_observed_at timestamptz;

-- The processor's own ledger of money movements (Stripe balance transactions): charges, refunds, fees,
-- payouts and adjustments, signed, in minor units. net = amount - fee, as Stripe reports it.
CREATE TABLE core.balance_transaction (
    balance_transaction_id   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    financial_transaction_id text,                 -- the gift's id used by finance, traced via the charge
    type                     text NOT NULL,        -- charge, refund, payout, stripe_fee, adjustment, …
    source_object_id         text,                 -- the ch_/re_/po_ id the movement belongs to
    amount_minor             bigint NOT NULL,
    fee_minor                bigint NOT NULL DEFAULT 0,
    net_minor                bigint NOT NULL,
    currency                 char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    status                   text NOT NULL,
    reporting_category       text,
    created_at               timestamptz NOT NULL,
    available_on             timestamptz,
    source                   text NOT NULL,
    source_record_id         text NOT NULL,        -- txn_… id
    updated_at               timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source, source_record_id),
    CHECK (net_minor = amount_minor - fee_minor)
);
CREATE INDEX balance_transaction_ftid ON core.balance_transaction (financial_transaction_id);
CREATE INDEX balance_transaction_created ON core.balance_transaction (created_at);

-- A refund of a donation (Stripe refund objects). Amounts are positive minor units.
CREATE TABLE core.refund (
    refund_id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    donation_id              uuid REFERENCES core.donation,
    financial_transaction_id text,
    charge_id                text,
    amount_minor             bigint NOT NULL CHECK (amount_minor >= 0),
    currency                 char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    status                   text NOT NULL,
    reason                   text,
    created_at               timestamptz NOT NULL,
    source                   text NOT NULL,
    source_record_id         text NOT NULL,        -- re_… id
    updated_at               timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source, source_record_id)
);
CREATE INDEX refund_donation ON core.refund (donation_id);
CREATE INDEX refund_ftid ON core.refund (financial_transaction_id);

-- The finance general ledger as finance exports it: one row per posting line, signed minor units
-- (contributions positive, fees and refund reversals negative).
CREATE TABLE core.ledger_posting (
    ledger_posting_id        uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    financial_transaction_id text NOT NULL,
    posting_date             date NOT NULL,
    account                  text NOT NULL,
    amount_minor             bigint NOT NULL,
    currency                 char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    reference                text NOT NULL,
    source_file              text,
    source                   text NOT NULL,
    source_record_id         text NOT NULL,        -- the line's reference
    updated_at               timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source, source_record_id)
);
CREATE INDEX ledger_posting_ftid ON core.ledger_posting (financial_transaction_id);
CREATE INDEX ledger_posting_date ON core.ledger_posting (posting_date);

-- What the CRM says about a gift, kept beside what the processor says, so a disagreement is visible.
ALTER TABLE core.donation
    ADD COLUMN crm_source_record_id text,
    ADD COLUMN crm_amount_minor     bigint CHECK (crm_amount_minor >= 0),
    ADD COLUMN crm_stage            text,
    ADD COLUMN crm_close_date       date;
CREATE UNIQUE INDEX donation_crm_record ON core.donation (crm_source_record_id);

-- The CRM's accounts: NPSP household accounts become core.household, organisation accounts
-- core.organization (already keyed by source id). Which account a contact belongs to is kept as its own
-- relation, so whichever of the two streams arrives second completes the link.
ALTER TABLE core.household
    ADD COLUMN source           text,
    ADD COLUMN source_record_id text,
    ADD UNIQUE (source, source_record_id);

CREATE TABLE core.crm_account_contact (
    source            text NOT NULL,
    contact_source_id text NOT NULL,       -- 003… Contact id
    account_source_id text NOT NULL,       -- 001… Account id
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, contact_source_id)
);
CREATE INDEX crm_account_contact_account ON core.crm_account_contact (source, account_source_id);

-- The CRM's currency and account of a gift (the processor's are currency and household/organization).
ALTER TABLE core.donation
    ADD COLUMN crm_currency   char(3) CHECK (crm_currency ~ '^[A-Z]{3}$'),
    ADD COLUMN crm_account_id text;
CREATE INDEX donation_crm_account ON core.donation (crm_account_id) WHERE crm_account_id IS NOT NULL;

SELECT audit.track_changes(t.regclass, t.key_column)
FROM (VALUES ('core.balance_transaction'::regclass, 'balance_transaction_id'), ('core.refund', 'refund_id'),
             ('core.ledger_posting', 'ledger_posting_id'),
             ('core.crm_account_contact', 'contact_source_id')) AS t(regclass, key_column);

GRANT SELECT ON core.balance_transaction, core.refund, core.ledger_posting, core.crm_account_contact
    TO cdp_viewer, cdp_editor, cdp_admin, cdp_finance;
GRANT SELECT, INSERT, UPDATE, DELETE ON core.balance_transaction, core.refund, core.ledger_posting,
    core.crm_account_contact TO cdp_loader;


-- Surveys, consent metadata and referrals
-- A consent statement belongs to a series: one source record's one statement (a Moodle user's marketing
-- checkbox, a Zigpoll participant's consent, one Typeform answer). A new row is added only when the
-- series' status changes, so source_record_id = statement_key '@' stated time names one version of it.
ALTER TABLE core.consent ADD COLUMN statement_key text;
CREATE INDEX consent_statement ON core.consent (statement_key, stated_at DESC);

-- Who the source says answered (a Zigpoll participant id, a Typeform hidden learner id) and the consent
-- statement in force when they answered; a response whose participant has not synced yet lands with a
-- NULL person and is linked when the participant arrives.
ALTER TABLE core.survey_response
    ADD COLUMN respondent_ref text,
    ADD COLUMN consent_id     uuid REFERENCES core.consent;
CREATE INDEX survey_response_respondent ON core.survey_response (source, respondent_ref);

-- ReferralHero's view of a subscriber: their own referral code, who referred them (kept as the source id
-- until that subscriber is resolved to a person), and how many clicks and sign-ups their link brought.
ALTER TABLE core.referral
    ADD COLUMN referrer_source_id text,
    ADD COLUMN referral_code      text,
    ADD COLUMN clicks             integer CHECK (clicks >= 0),
    ADD COLUMN people_referred    integer CHECK (people_referred >= 0);
CREATE INDEX referral_referrer_source ON core.referral (source, referrer_source_id);
