"""Sealing secrets at rest: round trips, several keys newest first, and clear refusals."""

from __future__ import annotations

import pytest

from trame_bot.errors import ConfigError
from trame_bot.vault import Vault, new_key, parse_keys

OLD, NEW = new_key(), new_key()
TOKEN = "xoxb-123-456-SECRET"


def test_a_sealed_secret_opens_and_does_not_show_the_secret() -> None:
    vault = Vault([NEW])
    sealed = vault.seal(TOKEN)
    assert TOKEN not in sealed
    assert vault.open(sealed) == TOKEN
    assert vault.seal(TOKEN) != sealed, "each seal is fresh (random IV)"
    assert NEW not in repr(vault)


def test_old_keys_open_and_rotation_reseals_under_the_newest() -> None:
    sealed_old = Vault([OLD]).seal(TOKEN)
    both = Vault([NEW, OLD])
    assert both.open(sealed_old) == TOKEN
    resealed = both.reseal(sealed_old)
    assert resealed != sealed_old
    assert Vault([NEW]).open(resealed) == TOKEN
    assert both.reseal(resealed) == resealed, "already under the newest key: unchanged"


def test_a_secret_sealed_with_a_dropped_key_is_named_not_a_traceback() -> None:
    sealed_old = Vault([OLD]).seal(TOKEN)
    with pytest.raises(ConfigError, match="add the old key back"):
        Vault([NEW]).open(sealed_old)
    with pytest.raises(ConfigError, match="add the old key back"):
        Vault([NEW]).reseal(sealed_old)


@pytest.mark.parametrize(("keys", "message"), [([], "not set"), (["short"], "key 1 is not")])
def test_bad_keys_are_refused_at_start(keys: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Vault(keys)


def test_keys_are_read_newest_first_separated_by_commas_or_spaces() -> None:
    assert parse_keys(f" {NEW}, {OLD} ") == (NEW, OLD)
    assert parse_keys(None) == ()
