-- 0014 migration phase 2: link learners to the Contacts that already exist in the CRM. A learner whose
-- Contact staff created in Salesforce (synced here through the salesforce.contact source identity) has no
-- CDP_Person_Id__c yet: an upsert by that external id would create a second Contact. The push first sets
-- the external id on the existing Contact by its Id; a person with two or more Contacts is not guessed at.
-- Only ops tables, no personal data: person ids and CRM record ids.

-- One row per person and push run that planned a link: the Contact's Id and what became of it.
CREATE TABLE ops.crm_contact_link (
    run_id     text NOT NULL,
    person_id  uuid NOT NULL,
    crm_id     text NOT NULL,
    outcome    text NOT NULL CHECK (outcome IN ('planned', 'linked', 'failed')),
    error_code text,
    linked_at  timestamptz,
    PRIMARY KEY (run_id, person_id)
);
CREATE INDEX crm_contact_link_person ON ops.crm_contact_link (person_id);

-- People the push holds back because the CRM does not give one Contact for them: two or more Contacts
-- (a duplicate in the CRM: merge them there), or their one Contact carries another person's external id.
-- Open until the condition is gone; the next run then closes the row and links or pushes the person.
CREATE TABLE ops.crm_contact_review (
    review_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    person_id       uuid NOT NULL,
    reason          text NOT NULL CHECK (reason IN ('duplicate_contacts', 'external_id_taken')),
    crm_ids         text[] NOT NULL,
    detected_run_id text NOT NULL,
    detected_at     timestamptz NOT NULL DEFAULT now(),
    last_run_id     text NOT NULL,
    resolved_at     timestamptz,
    resolved_run_id text
);
CREATE UNIQUE INDEX crm_contact_review_open ON ops.crm_contact_review (person_id) WHERE resolved_at IS NULL;

ALTER TABLE ops.crm_push_run
    ADD COLUMN links_planned     integer NOT NULL DEFAULT 0,
    ADD COLUMN linked            integer NOT NULL DEFAULT 0,
    ADD COLUMN link_failed       integer NOT NULL DEFAULT 0,
    ADD COLUMN contacts_in_review integer NOT NULL DEFAULT 0;

REVOKE ALL ON ops.crm_contact_link, ops.crm_contact_review FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE ON ops.crm_contact_link, ops.crm_contact_review TO cdp_loader;
GRANT DELETE ON ops.crm_contact_link TO cdp_loader;
GRANT SELECT ON ops.crm_contact_link, ops.crm_contact_review TO cdp_viewer, cdp_editor, cdp_admin, cdp_finance;
