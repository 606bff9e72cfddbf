"""The account hierarchy and the coverage file ops edit."""

from __future__ import annotations

import pytest

from portability.adapters.coverage_file import CoverageFile, CoverageUnavailable
from portability.adapters.credentials import hash_token, token_matches
from portability.domain.accounts import AccountHierarchy
from schemas import NumberType, PortingTrack

ROOT, CHILD, GRANDCHILD, OTHER = ("AC" + c * 32 for c in "abcd")
TREE = AccountHierarchy({ROOT: None, CHILD: ROOT, GRANDCHILD: CHILD, OTHER: None})


def test_an_account_acts_for_itself_and_its_sub_accounts_at_any_depth():
    assert TREE.may_act_for(ROOT, ROOT)
    assert TREE.may_act_for(ROOT, GRANDCHILD)
    assert TREE.may_act_for(CHILD, GRANDCHILD)


def test_a_sub_account_never_acts_for_its_parent_nor_anyone_for_an_unknown_account():
    assert not TREE.may_act_for(CHILD, ROOT)
    assert not TREE.may_act_for(OTHER, CHILD)
    assert not TREE.may_act_for(ROOT, "AC" + "e" * 32)


def test_accounts_under_one_root_belong_to_one_customer():
    assert TREE.same_customer(GRANDCHILD, ROOT)
    assert not TREE.same_customer(CHILD, OTHER)


def test_a_cycle_in_the_hierarchy_does_not_hang():
    cycle = AccountHierarchy({ROOT: CHILD, CHILD: ROOT})
    assert cycle.root_of(ROOT) in (ROOT, CHILD)
    assert not cycle.may_act_for(OTHER, ROOT)


def test_tokens_are_stored_hashed_and_only_the_right_token_matches():
    stored = hash_token("s3cret")
    assert "s3cret" not in stored
    assert token_matches("s3cret", stored)
    assert not token_matches("S3cret", stored)
    assert not token_matches("s3cret", "garbage")


def test_a_token_with_a_trailing_nul_does_not_match_though_scrypt_alone_would_say_it_does():
    import base64
    import hashlib

    stored = hash_token("s3cret")
    _, n, r, p, salt, digest = stored.split("$")
    padded = hashlib.scrypt(b"s3cret\x00", salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p))
    assert padded == base64.b64decode(digest), "HMAC pads its key with NULs"
    assert not token_matches("s3cret\x00", stored)
    assert not token_matches("s3cret\n", stored)


@pytest.mark.parametrize("token", ["", "x" * 257, "tab\there", "caf\u00e9", "nul\x00"])
def test_a_token_that_is_not_1_to_256_printable_ascii_characters_is_never_stored(token):
    with pytest.raises(ValueError):
        hash_token(token)


def test_the_default_coverage_follows_the_seeds():
    coverage = CoverageFile().current()
    for country in ("US", "CA"):
        tracks = coverage.countries[country].number_types
        assert tracks == {NumberType.LOCAL: PortingTrack.API, NumberType.MOBILE: PortingTrack.API,
                          NumberType.TOLL_FREE: PortingTrack.MANUAL}
    assert "NO" in coverage.countries, "Norway, not YAML's false"
    international = [c for c in coverage.countries if c not in ("US", "CA")]
    assert len(international) >= 15
    assert all(set(coverage.countries[c].number_types.values()) == {PortingTrack.MANUAL} for c in international)
    assert "CO" not in coverage.countries


def test_an_edited_coverage_file_is_read_again(tmp_path):
    path = tmp_path / "coverage.yaml"
    path.write_text("countries:\n  US: {number_types: {LOCAL: api}, min_notice_business_days: 2, cancellation_policy: north_american}\n")
    source = CoverageFile(path)
    assert set(source.current().countries) == {"US"}
    path.write_text("countries:\n  GB: {number_types: {LOCAL: manual}, min_notice_business_days: 2, cancellation_policy: international}\n")
    import os
    os.utime(path, (1, 1))
    assert set(source.current().countries) == {"GB"}


@pytest.mark.parametrize("text", [
    "countries: [",
    "countries:\n  US: {number_types: {LOCAL: teleport}, min_notice_business_days: 2, cancellation_policy: north_american}",
    "countries:\n  US: {number_types: {LOCAL: api}, min_notice_business_days: 2, cancellation_policy: north_american, fee_per_number: 5}",
    "countries:\n  USA: {number_types: {LOCAL: api}, min_notice_business_days: 2, cancellation_policy: north_american}",
    # Beyond the contract's bounds: refused as the file loads, not in each check (a 500, dead letters).
    "countries:\n  US: {number_types: {LOCAL: api}, min_notice_business_days: 300, cancellation_policy: north_american}",
    "countries:\n  CA: {number_types: {LOCAL: api}, min_notice_business_days: 2, cancellation_policy: north_american, bill_max_age_days: 5000}",
])
def test_a_broken_coverage_file_is_reported_not_guessed(tmp_path, text):
    path = tmp_path / "coverage.yaml"
    path.write_text(text)
    with pytest.raises(CoverageUnavailable):
        CoverageFile(path).current()


def test_a_missing_coverage_file_is_reported(tmp_path):
    with pytest.raises(CoverageUnavailable, match="No such file"):
        CoverageFile(tmp_path / "absent.yaml").current()
