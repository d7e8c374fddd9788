-- Today's definition, re-applied by `cdp migrate` after the revisions: change it here (sql/README.md).
-- Last defined by sql/migrations/versions/0005_access_consent.sql.

-- A sync that re-sends an erased person (the source still has them) must not bring the data back.
CREATE OR REPLACE FUNCTION privacy.keep_erased_person_blank() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    NEW.given_name := NULL;
    NEW.family_name := NULL;
    NEW.date_of_birth := NULL;
    NEW.email := NULL;
    NEW.email_normalized := NULL;
    NEW.phone := NULL;
    NEW.phone_e164 := NULL;
    NEW.erased_at := OLD.erased_at;
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION privacy.keep_erased_person_blank() FROM PUBLIC;
