-- 0028 Erasure reaches the dedupe's own records (issue 15: personal data through every path).
--
-- A merge keeps both person rows whole as before-images (ops.identity_merge.survivor_before /
-- absorbed_before, for unmerge), and a reviewer's decision may carry a free-text note about the pair
-- (ops.identity_decision.note). An erased person's email, names, birth date and phone stayed in those images,
-- and a note could name them: privacy.erase_person_ops (sql/definitions) now blanks the personal columns of
-- the images (audit.personal_column's list for core.person, the same columns the audit trail keeps out of the
-- chain) and the notes of decisions about the person. Its owner, cdp_definer, may change exactly those.
GRANT UPDATE (survivor_before, absorbed_before) ON ops.identity_merge TO cdp_definer;
GRANT UPDATE (note) ON ops.identity_decision TO cdp_definer;

-- A note is free text typed by a reviewer: readable by the reviewers (editors, admin) and the pipeline, not by
-- viewers, who keep every other column of the decisions.
REVOKE SELECT ON ops.identity_decision FROM cdp_viewer;
GRANT SELECT (decision_id, pair_id, person_low, person_high, decision, reviewer, decided_at, db_role)
    ON ops.identity_decision TO cdp_viewer;
