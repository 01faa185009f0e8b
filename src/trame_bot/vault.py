"""Secrets at rest: Slack tokens are sealed with Fernet (AES-128-CBC + HMAC-SHA256, from
`cryptography`) before they reach the database, and opened only when a message is sent.

`TRAME_ENCRYPTION_KEY` lists one or more keys, newest first: the newest seals, every one
opens, so a key can be replaced without a moment when stored tokens cannot be read
(`trame-bot keys rotate` then re-seals everything under the newest and the old key can go).
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from trame_bot.errors import ConfigError

KEY_VARIABLE = "TRAME_ENCRYPTION_KEY"
UNKNOWN_KEY = (
    f"a stored secret was sealed with a key that is not in {KEY_VARIABLE}: "
    "add the old key back, after the new one"
)


class Vault:
    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ConfigError(f"{KEY_VARIABLE} is not set: make a key with `trame-bot keys new`")
        fernets = []
        for position, key in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(key.encode()))
            except ValueError:
                raise ConfigError(
                    f"{KEY_VARIABLE} key {position} is not a Fernet key (32 url-safe "
                    "base64-encoded bytes): make one with `trame-bot keys new`"
                ) from None
        self._keys = MultiFernet(fernets)
        self._newest = fernets[0]

    def __repr__(self) -> str:
        return "Vault(<keys hidden>)"

    def seal(self, secret: str) -> str:
        return self._keys.encrypt(secret.encode()).decode()

    def open(self, sealed: str) -> str:
        try:
            return self._keys.decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise ConfigError(UNKNOWN_KEY) from None

    def reseal(self, sealed: str) -> str:
        """The same secret sealed under the newest key (unchanged if it already is)."""
        try:
            self._newest.decrypt(sealed.encode())
        except InvalidToken:
            pass
        else:
            return sealed
        try:
            return self._keys.rotate(sealed.encode()).decode()
        except InvalidToken:
            raise ConfigError(UNKNOWN_KEY) from None


def new_key() -> str:
    return Fernet.generate_key().decode()


def parse_keys(raw: str | None) -> tuple[str, ...]:
    """`TRAME_ENCRYPTION_KEY`: keys separated by commas or spaces, newest first."""
    return tuple(part for part in (raw or "").replace(",", " ").split() if part)
