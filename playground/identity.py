"""Classroom identity: a name claimed with a private key, an optional class code.

The first browser to use a name claims it and receives a random key
(:func:`secrets.token_urlsafe`, 32 bytes: 256 bits). The server keeps only the key's SHA-256:
a key that random needs no salt or slow hash (nothing to guess from a dictionary), and a leaked
database gives no key. The key travels with the student in the page address
(``?user=Ada&key=...``), so a reload or the same bookmark on another device keeps working; a
browser without it is told the name is taken. Share links of designs never carry it
(:mod:`playground.share` encodes the spec only).

Comparisons of keys and codes are constant-time (:func:`hmac.compare_digest` over digests of
equal length). ``PLAYGROUND_CLASS_CODE``, when set, must be given once to claim a name;
``PLAYGROUND_TEACHER_CODE`` unlocks the teacher's role (:func:`teacher_code_ok`).

With an OpenID login (Streamlit's ``st.login``, configured by ``[auth]`` in ``secrets.toml``)
there are no names or keys: :func:`login_owner` makes the owner from the ID token's claims.

Names used before identities existed (runs and designs of an older store) have no key: the
first to claim such a name owns them, as before.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from playground.access import AccessDenied, Actor, check_staff
from playground.errors import PlaygroundError
from playground.runs import MAX_OWNER_CHARS, StoreBase, normalise_owner, printable
from playground.settings import get_settings
from playground.store.schema import identities, name_key

KEY_BYTES = 32
MAX_KEY_CHARS = 128  # a longer "key" is refused before hashing


class NameTaken(AccessDenied):
    """The name is already claimed and no (right) key was given."""


@dataclass(frozen=True)
class Identity:
    """A claimed name (no key: only its hash is stored); times are Unix seconds."""

    name: str
    created_at: float
    reset_at: float | None


def new_key() -> str:
    """A fresh private key: URL-safe text, 43 characters."""
    return secrets.token_urlsafe(KEY_BYTES)


def hash_key(key: str) -> str:
    """The stored form of a key or code: SHA-256, hex."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def codes_match(given: str, expected: str) -> bool:
    """Constant-time comparison of a typed code with the configured one (digests compared, so
    not even the length leaks). An empty expected code matches nothing."""
    if not expected:
        return False
    return hmac.compare_digest(hash_key(str(given)[:MAX_KEY_CHARS]), hash_key(expected))


def teacher_code_ok(given: str) -> bool:
    """Whether ``given`` is ``PLAYGROUND_TEACHER_CODE`` (never true when it is unset)."""
    return codes_match(given, get_settings().teacher_code)


def class_code_required() -> bool:
    """Whether claiming a name needs ``PLAYGROUND_CLASS_CODE``."""
    return bool(get_settings().class_code)


def _digest8(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]


def login_owner(claims: Mapping[str, Any]) -> str:
    """The owner name of an OpenID login, from its ID token claims (``st.user``), or ``""``.

    - A **verified e-mail address** (``email``, with ``email_verified`` absent or true: OpenID
      Connect Core 1.0, section 5.1) is the owner, as the student knows it. One longer than
      ``MAX_OWNER_CHARS`` keeps its first characters and ends ``~`` + 8 hex digits of its
      SHA-256, so two long addresses never share an owner.
    - Otherwise (no address, or one the provider has not verified, which anyone could have
      typed) the owner is the display name, e-mail or ``user``, followed by `` #`` and 8 hex
      digits of SHA-256 of ``iss`` and ``sub``: the provider's stable, unique subject. Two
      people with the same display name stay apart, and nobody can take a classmate's
      verified address by typing it unverified.
    - Without a usable address or subject: ``""`` (not logged in).
    """
    email = printable(str(claims.get("email") or "")[:1000])
    verified = claims.get("email_verified", True) not in (False, "false", "False")
    if email and verified:
        if len(email) > MAX_OWNER_CHARS:
            email = f"{email[:MAX_OWNER_CHARS - 9]}~{_digest8(email.lower())}"
        owner = email
    else:
        subject = printable(claims.get("sub"))
        if not subject:
            return ""
        label = printable(claims.get("name")) or email or "user"
        tag = f" #{_digest8(printable(claims.get('iss')) + ' ' + subject)}"
        owner = label[:MAX_OWNER_CHARS - len(tag)].rstrip() + tag
    try:
        return normalise_owner(owner)
    except PlaygroundError:
        return ""


class IdentityStore(StoreBase):
    """Claimed names and their key hashes, in the run store's database."""

    def claim(self, name: str, class_code: str = "") -> str:
        """Claim ``name`` and return its new key (shown once: only its hash is kept).

        :class:`NameTaken` if someone claimed it already; :class:`AccessDenied` if a class code
        is set and ``class_code`` is not it.
        """
        name = normalise_owner(name)
        required = get_settings().class_code
        if required and not codes_match(class_code, required):
            raise AccessDenied("that is not the class code: ask your teacher for it")
        key = new_key()
        try:
            with self._db.write() as con:
                taken = con.execute(sa.select(identities.c.owner_key)
                                    .where(identities.c.owner_key == name_key(name))).first()
                if taken is None:
                    con.execute(sa.insert(identities).values(
                        owner_key=name_key(name), owner=name, key_hash=hash_key(key),
                        created_at=time.time()))
        except sa.exc.IntegrityError:  # PostgreSQL: claimed by another server a moment ago
            taken = True
        if taken is not None:
            raise NameTaken(f"the name {name} is taken: open your own link (it holds your "
                            "key), pick another name, or ask the teacher to reset it")
        return key

    def is_claimed(self, name: str) -> bool:
        rows = self._read(sa.select(identities.c.owner_key)
                          .where(identities.c.owner_key == name_key(normalise_owner(name))))
        return bool(rows)

    def authenticate(self, name: str, key: str) -> Actor:
        """The student's actor if ``key`` is ``name``'s key; :class:`NameTaken` otherwise."""
        name = normalise_owner(name)
        rows = self._read(sa.select(identities.c.owner, identities.c.key_hash)
                          .where(identities.c.owner_key == name_key(name)))
        given = hash_key(str(key)[:MAX_KEY_CHARS]) if key else ""
        # compare even when the name is unknown or the key empty: the same work either way
        stored = rows[0][1] if rows else hash_key("")
        if not hmac.compare_digest(given, stored) or not rows or not key:
            if not rows:
                raise AccessDenied(f"nobody has claimed the name {name} yet: type it into the "
                                   "name box to claim it")
            raise NameTaken(f"the name {name} is taken and this link has no (or a wrong) key: "
                            "open your own link, or ask the teacher to reset it")
        return Actor(rows[0][0])

    def reset(self, name: str, *, by: Actor) -> str:
        """Give ``name`` a new key (the teacher, for a student who lost theirs); the old key
        stops working at once. Returns the new key."""
        check_staff(by, "reset a student's key")
        name = normalise_owner(name)
        key = new_key()
        with self._db.write() as con:
            done = con.execute(
                sa.update(identities).where(identities.c.owner_key == name_key(name))
                .values(key_hash=hash_key(key), reset_at=time.time())).rowcount
        if not done:
            raise AccessDenied(f"nobody has claimed the name {name}")
        return key

    def list_identities(self) -> list[Identity]:
        """Every claimed name, oldest claim first."""
        rows = self._read(sa.select(identities.c.owner, identities.c.created_at,
                                    identities.c.reset_at).order_by(identities.c.created_at))
        return [Identity(*r) for r in rows]
