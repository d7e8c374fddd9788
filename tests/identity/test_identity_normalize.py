import pandas as pd

from cdp.identity.normalize import canonical_email, canonical_given_name, e164_phone, normalize_people


def test_nicknames_map_to_one_canonical_given_name():
    assert canonical_given_name("bill") == canonical_given_name("william") == "william"
    assert canonical_given_name("peggy") == "margaret"
    assert canonical_given_name("zbigniew") == "zbigniew"


def test_accents_and_other_scripts_are_transliterated():
    people = pd.DataFrame(
        {"given_name": ["José", "Jürgen", "Владимир"], "family_name": ["García", "Müller", "Путин"]}
    )
    normalized = normalize_people(people)
    assert normalized["given_name"].tolist() == ["jose", "jurgen", "vladimir"]
    assert normalized["family_name"].tolist() == ["garcia", "muller", "putin"]


def test_case_spacing_punctuation_and_titles_are_removed():
    normalized = normalize_people(
        pd.DataFrame({"given_name": ["  Mr. SEAN "], "family_name": ["O'Brien-Smith"]})
    )
    assert normalized.loc[0, "given_name"] == "sean"
    assert normalized.loc[0, "family_name"] == "obrien smith"


def test_whole_names_in_one_field_are_split_and_order_insensitive_keys_agree():
    people = pd.DataFrame(
        {
            "given_name": ["Wei", "Zhang Wei", "Smith, John", "John"],
            "family_name": ["Zhang", None, None, "Smith"],
        }
    )
    normalized = normalize_people(people)
    assert normalized.loc[2, ["given_name", "family_name"]].tolist() == ["john", "smith"]
    assert normalized.loc[0, "name_tokens"] == normalized.loc[1, "name_tokens"] == "wei zhang"
    assert normalized.loc[2, "name_tokens"] == normalized.loc[3, "name_tokens"]


def test_single_names_are_kept_as_they_are():
    normalized = normalize_people(pd.DataFrame({"given_name": [None], "family_name": ["Madonna"]}))
    assert normalized.loc[0, "family_name"] == "madonna"
    assert normalized.loc[0, "given_name"] is None


def test_phone_numbers_become_e164_with_a_default_region():
    assert e164_phone("(415) 555-2671", "US") == "+14155552671"
    assert e164_phone("020 7946 0958", "GB") == "+442079460958"
    assert e164_phone("+44 20 7946 0958", "US") == "+442079460958"
    assert e164_phone("not a phone", "US") is None


def test_email_dots_and_tags_are_dropped_only_where_the_provider_ignores_them():
    assert canonical_email("John.Doe+news@GoogleMail.com") == "johndoe@gmail.com"
    assert canonical_email("john.doe+news@outlook.com") == "john.doe@outlook.com"
    assert canonical_email("John.Doe+news@Example.org") == "john.doe+news@example.org"
    assert canonical_email("no-at-sign") is None


def test_dates_are_read_from_common_formats_and_day_month_swaps_share_a_key():
    normalized = normalize_people(pd.DataFrame({"date_of_birth": ["1980-04-09", "19800904", "09/04/1980"]}))
    assert normalized["date_of_birth"].tolist() == ["19800409", "19800904", "19800409"]
    assert normalized["dob_unordered"].nunique() == 1


def test_levels_plug_into_recordlinkage_compare():
    import recordlinkage as rl

    from cdp.identity.compare import LevelsFeature

    normalized = normalize_people(
        pd.DataFrame({"given_name": ["Bill", "William", "Ann"], "family_name": ["Smith", "Smith", "Lee"]})
    )
    compare = rl.Compare()
    compare.add(LevelsFeature())
    features = compare.compute(pd.MultiIndex.from_tuples([(0, 1), (0, 2)]), normalized)
    assert features.iloc[0, :2].tolist() == [2, 3]  # nickname = strong agreement, family exact
    assert features.iloc[1, :2].tolist() == [0, 0]
