"""Secrets the store keeps: passwords (argon2id) and bearer secrets (stream keys, API
tokens: random, high-entropy, stored as SHA-256).

Why two kinds of hash: a password is low-entropy and chosen by a person, so it gets a
slow, memory-hard hash (argon2id, RFC 9106) that makes guessing expensive after a
database leak. A stream key or API token is 256 random bits: nobody can guess it, slow or
fast, so a plain SHA-256 suffices, and it lets the store find the row by an indexed
``hash`` column in one query instead of trying every row.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from strom.store.errors import InvalidUsername, WeakPassword
from strom.usernames import (
    RESERVED_USERNAMES,
    USERNAME_MAX,
    USERNAME_MIN,
    USERNAME_RE,
)

PASSWORD_MIN = 10  # the one rule: sign-up, the dashboard, the CLI
PASSWORD_MAX = 1024  # argon2 takes any length; this bounds the work one request can ask for
SECRET_MAX = 256  # longest stream key / token worth hashing; ours are 43-49 characters

# Not a secret: lets secret scanners and people tell an API token from a stream key.
API_TOKEN_PREFIX = "strom_"  # noqa: S105


# The first few of every leaked-password list: refused outright.
COMMON_PASSWORDS = frozenset(
    {
        "password", "password1", "password123", "12345678", "123456789", "1234567890",
        "qwertyuiop", "qwerty123", "11111111", "00000000", "iloveyou", "abc12345",
        "letmein1", "welcome1", "sunshine", "football", "baseball", "princess",
        "starwars", "trustno1", "passw0rd", "1q2w3e4r", "qwertyui", "asdfghjk",
    }
)  # fmt: skip


def check_username(username: str) -> str:
    """The username as given, if it follows the rules; else :class:`InvalidUsername`."""
    if not isinstance(username, str) or not USERNAME_RE.fullmatch(username):
        raise InvalidUsername(
            f"a username has {USERNAME_MIN}-{USERNAME_MAX} characters: letters a-z, digits and '_'"
        )
    if username.lower() in RESERVED_USERNAMES:
        raise InvalidUsername(f"the username {username!r} is reserved")
    return username


def username_key(username: str) -> str:
    """What uniqueness and look-ups compare: names differing only in case are one name."""
    return username.lower()


def check_password(password: str, username: str) -> None:
    """Raise :class:`WeakPassword` unless ``password`` is acceptable for ``username``.

    Length is what matters (NIST SP 800-63B §5.1.1.2): no composition rules, but the
    username itself and the most common passwords are refused."""
    if not isinstance(password, str) or len(password) < PASSWORD_MIN:
        raise WeakPassword(f"a password has at least {PASSWORD_MIN} characters")
    if len(password) > PASSWORD_MAX:
        raise WeakPassword(f"a password has at most {PASSWORD_MAX} characters")
    if password.lower() == username.lower():
        raise WeakPassword("the password must not be the username")
    if password.lower() in COMMON_PASSWORDS or len(set(password)) < 3:
        raise WeakPassword("this password is too easy to guess")


@dataclass(frozen=True)
class Argon2Params:
    """argon2id cost. The defaults are RFC 9106's second recommended option (64 MiB,
    3 passes, 4 lanes): ~50-100 ms per hash on a server core."""

    time_cost: int = 3
    memory_cost: int = 64 * 1024  # KiB
    parallelism: int = 4

    @classmethod
    def cheap(cls) -> Argon2Params:
        """For tests only: microseconds per hash, no protection worth the name."""
        return cls(time_cost=1, memory_cost=8, parallelism=1)


class Passwords:
    """argon2id hashing with one set of parameters. Synchronous and CPU-bound: the store
    calls it from a worker thread."""

    def __init__(self, params: Argon2Params | None = None) -> None:
        self.params = params or Argon2Params()
        self._hasher = PasswordHasher(
            time_cost=self.params.time_cost,
            memory_cost=self.params.memory_cost,
            parallelism=self.params.parallelism,
        )
        # Verified against when the user does not exist, so an unknown name costs the
        # same time as a wrong password and response times do not reveal who has an
        # account.
        self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, stored_hash: str | None, password: str) -> bool:
        """Whether ``password`` matches ``stored_hash``; with ``None`` (no such user),
        do the same work and answer ``False``."""
        if len(password) > PASSWORD_MAX:
            password = ""  # never matches a stored hash: check_password refused it
        target = stored_hash if stored_hash is not None else self._dummy_hash
        try:
            ok = self._hasher.verify(target, password)
        except (VerificationError, InvalidHashError):
            return False
        return ok and stored_hash is not None

    def needs_rehash(self, stored_hash: str) -> bool:
        """True when the hash was made with other parameters than ours (e.g. the operator
        raised the cost): the store then replaces it after a successful log-in."""
        try:
            return self._hasher.check_needs_rehash(stored_hash)
        except InvalidHashError:
            return True


def new_stream_key() -> str:
    """256 random bits, URL-safe (it ends up in ``rtmp://HOST/live/KEY``)."""
    return secrets.token_urlsafe(32)


def new_api_token() -> str:
    return API_TOKEN_PREFIX + secrets.token_urlsafe(32)


def secret_hash(secret: str) -> str:
    """How a stream key or token is stored and looked up: hex SHA-256."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def same_hash(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
