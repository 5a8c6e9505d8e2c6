"""Who is calling: users, service accounts, their tokens, sign-in links and sessions.

A secret (token, session, sign-in link) is random, shown once, and stored only as its SHA-256
hash: whoever reads the database cannot sign in with what is there. A token starts with
`hitl_`, so secret scanners can recognise a leaked one.

Checking a token or a session costs one hash and, at most every `CACHE_SECONDS`, one read:
a revocation in this process takes effect at once, in other processes within that time.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
import unicodedata
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TypeVar

from hitl.service import access
from hitl.service.errors import Conflict, Forbidden, Invalid, NotFound
from hitl.service.ids import new_id
from hitl.service.principal import Principal
from hitl.store import (
    AuditRow,
    LinkRow,
    PrincipalRow,
    Reader,
    SessionRow,
    Store,
    TokenRow,
    Tx,
)

ROLES = ("submitter", "reviewer", "admin")
TOKEN_PREFIX = "hitl_"
CACHE_SECONDS = 5.0
LAST_USED_EVERY = 60.0  # seconds between writes of a token's last-used time
LINK_SECONDS = 15 * 60.0
FIRST_ADMIN = "admin"


R = TypeVar("R")


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def roles_text(roles: Iterable[str]) -> str:
    chosen = sorted(set(roles))
    unknown = [r for r in chosen if r not in ROLES]
    if unknown or not chosen:
        raise Invalid(
            f"unknown role {unknown[0]!r}: choose from {', '.join(ROLES)}"
            if unknown
            else f"give at least one role: {', '.join(ROLES)}"
        )
    return " ".join(chosen)


def check_name(name: str, what: str = "name") -> str:
    """A name as stored: NFC, trimmed, 1–200 characters, no control characters."""
    cleaned = unicodedata.normalize("NFC", name.strip())
    if not cleaned or len(cleaned) > 200:
        raise Invalid(f"a {what} has 1 to 200 characters")
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs") for c in cleaned):
        raise Invalid(f"a {what} cannot contain control characters")
    return cleaned


def check_email(email: str | None) -> str | None:
    if email is None:
        return None
    email = unicodedata.normalize("NFC", email.strip())
    local, at, domain = email.rpartition("@")
    odd = any(c.isspace() or unicodedata.category(c) in ("Cc", "Cf", "Cs") for c in email)
    if not at or not local or "." not in domain or len(email) > 320 or odd:
        raise Invalid(f"{email!r} is not an e-mail address")
    return email


MAX_DURATION_DAYS = 36_500  # a hundred years: a date every clock and calendar can show


def parse_duration(text: str) -> float:
    """`30d`, `12h`, `45m`, `90s`: seconds, at most `MAX_DURATION_DAYS` days."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
    number, unit = text[:-1], text[-1:].lower()
    digits = number.lstrip("0")
    said = _quoted(text)
    if unit not in units or not number.isdigit() or not number.isascii():
        raise Invalid(f"{said} is not a duration: write e.g. 30d, 12h, 45m or 90s")
    if not digits:
        raise Invalid(f"{said} is no time at all: give a duration longer than 0, e.g. 30d")
    # Counted before read: Python reads no integer of more than 4,300 digits.
    if len(digits) > 12 or int(digits) * units[unit] > MAX_DURATION_DAYS * 86400:
        raise Invalid(f"{said} is longer than {MAX_DURATION_DAYS} days: give a shorter one")
    return int(digits) * units[unit]


MOMENT_EXAMPLES = "2026-11-01, 2026-11-01T09:30, 2026-11-01T09:30+01:00, 7d or 1764547200"


def parse_moment(text: str, now: float) -> float:
    """A moment as seconds since the epoch, from what a person or a program may write: a
    date or time (UTC unless it says; `2026-11-01`, `20261101`), a duration meaning that long
    before `now` (`7d`), or seconds since the epoch (`1764547200`: nine digits or more, or
    `0`, so that a short number is never taken for a date long past)."""
    whole, dot, fraction = text.partition(".")
    number = text.isascii() and whole.isdigit() and (not dot or fraction.isdigit())
    if number and (len(whole) >= 9 or not whole.strip("0")):
        if len(whole.lstrip("0")) > 11:  # after the year 5138
            raise Invalid(
                f"{_quoted(text)} is too far in the future: give seconds since the epoch "
                "(not milliseconds)"
            )
        return float(text)
    if text[:-1].isdigit() and text[-1:].isalpha():
        return now - parse_duration(text)
    moment = _iso(text)
    if moment is None:
        if " " in text.strip() and _iso(text.strip().replace(" ", "+")) is not None:
            raise Invalid(
                f"{_quoted(text)} has a space where its offset's '+' goes: in a URL's query a "
                "'+' is read as a space, so write it as %2B"
            )
        what = "seconds since the epoch (nine digits or more)" if number else "a duration"
        raise Invalid(f"{_quoted(text)} is neither a date nor {what}: write e.g. {MOMENT_EXAMPLES}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _iso(text: str) -> datetime | None:
    """An ISO 8601 date or time, in ASCII; None if `text` is not one."""
    try:
        return datetime.fromisoformat(text) if text.isascii() else None
    except ValueError:
        return None


def _quoted(text: str) -> str:
    """What was typed, for a message: quoted, and cut if long."""
    return repr(text if len(text) <= 24 else text[:20] + "…")


def audit(
    tx: Tx,
    actor: str | None,
    action: str,
    target: str | None = None,
    address: str | None = None,
    **detail: Any,
) -> None:
    """Append to the audit log, in the transaction of the act it records."""
    text = json.dumps(detail, ensure_ascii=False) if detail else None
    tx.insert(AuditRow(None, time.time(), actor, action, target, address, text))


def _one(rows: list[R]) -> R | None:
    return rows[0] if rows else None


Credential = TypeVar("Credential", TokenRow, SessionRow)


def _with_owner(
    r: Reader, kind: type[Credential], key: str
) -> tuple[Credential | None, PrincipalRow | None]:
    """A token or session by the hash of its secret, and the principal it belongs to."""
    row = _one(r.select(kind, hash=key))
    owner = _one(r.select(PrincipalRow, id=row.principal_id)) if row is not None else None
    return row, owner


def _token_roles(token: TokenRow, owner: PrincipalRow) -> str:
    """What a token may do now: the roles it was made with, less any its user has lost since
    (an admin's tokens keep theirs: an admin may grant any role)."""
    held = owner.roles.split()
    if owner.kind != "user" or "admin" in held:
        return token.roles
    return " ".join(r for r in token.roles.split() if r in held)


def represented(r: Reader, name: str) -> Principal:
    """The person a decision `on_behalf_of` names: an enabled user, or Invalid."""
    row = _one(r.select(PrincipalRow, name=name, disabled_at=None))
    if row is None or row.kind != "user":
        raise Invalid(
            f"on_behalf_of: no enabled user {name!r}: name the person whose decision this is, "
            "as `hitl user list` shows them"
        )
    return _principal(row, row.roles, "on_behalf_of")


def _principal(row: PrincipalRow, roles: str, via: str) -> Principal:
    return Principal(row.name, frozenset(roles.split()), row.kind, via)


def _start_session(
    tx: Tx,
    user: PrincipalRow,
    secret: str,
    via: str,
    now: float,
    seconds: float,
    address: str | None,
) -> Principal:
    """The session row of a sign-in, and its audit row."""
    tx.insert(SessionRow(new_id(), hash_secret(secret), user.id, via, now, now + seconds))
    audit(tx, user.name, "sign_in", user.name, address, via=via)
    return _principal(user, user.roles, "session")


def _address_or_none(email: str | None) -> str | None:
    """An e-mail address a provider gave, if it is one: a sign-in does not fail over it."""
    try:
        return check_email(email)
    except Invalid:
        return None


class Identity:
    def __init__(self, store: Store) -> None:
        self.store = store
        # hash -> (principal or None, when checked, the id and last-used time of the token)
        self._cache: dict[str, tuple[Principal | None, float]] = {}  # key -> (who, good until)
        self._used: dict[str, float] = {}

    # -- users ---------------------------------------------------------------------------------

    async def add_user(
        self,
        name: str,
        roles: Iterable[str],
        email: str | None = None,
        by: str | None = None,
        kind: str = "user",
    ) -> PrincipalRow:
        row = PrincipalRow(
            new_id(), check_name(name), kind, roles_text(roles), time.time(), check_email(email)
        )

        def write(tx: Tx) -> PrincipalRow:
            if tx.select(PrincipalRow, name=row.name):
                raise Conflict(f"{row.name!r} already exists")
            tx.insert(row)
            audit(tx, by, "user.add", row.name, roles=row.roles, kind=kind)
            return row

        return await self.store.write(write)

    async def users(self) -> list[PrincipalRow]:
        return await self.store.read(lambda r: r.select(PrincipalRow, order="created_at"))

    async def disable_user(self, name: str, by: str | None = None) -> PrincipalRow:
        name = check_name(name)

        def write(tx: Tx) -> PrincipalRow:
            row = _one(tx.select(PrincipalRow, name=name))
            if row is None:
                raise NotFound(f"no user {name!r}")
            if row.disabled_at is None:
                row.disabled_at = time.time()
                tx.change(PrincipalRow, {"id": row.id}, disabled_at=row.disabled_at)
                tx.change(
                    SessionRow,
                    {"principal_id": row.id, "revoked_at": None},
                    revoked_at=row.disabled_at,
                )
                audit(tx, by, "user.disable", name)
            return row

        row = await self.store.write(write)
        self._cache.clear()
        return row

    # -- tokens --------------------------------------------------------------------------------

    async def create_token(
        self,
        name: str,
        roles: Iterable[str],
        user: str | None = None,
        expires_in: float | None = None,
        by: str | None = None,
    ) -> tuple[str, TokenRow]:
        """A new token, as text (shown once), and its row. Without `user`, the token belongs
        to a service account of the token's name, made for it."""
        name = check_name(name, "token name")
        wanted = roles_text(roles)
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = time.time()
        expires = now + expires_in if expires_in is not None else None

        def write(tx: Tx) -> TokenRow:
            if tx.select(TokenRow, name=name):
                raise Conflict(f"a token named {name!r} exists: choose another name")
            owner: PrincipalRow | None
            if user is None:
                if tx.select(PrincipalRow, name=name):
                    raise Conflict(f"{name!r} is a user: give --user {name} or another name")
                owner = PrincipalRow(new_id(), name, "service", wanted, now)
                tx.insert(owner)
            else:
                owner = _one(tx.select(PrincipalRow, name=check_name(user)))
                if owner is None:
                    raise NotFound(f"no user {user!r}: add it first with `hitl user add`")
                if owner.disabled_at is not None:
                    raise Conflict(f"{owner.name!r} is disabled: its tokens would not work")
                extra = set(wanted.split()) - set(owner.roles.split())
                if extra and "admin" not in owner.roles.split():
                    raise Invalid(f"{owner.name!r} does not have the role {sorted(extra)[0]!r}")
            row = TokenRow(new_id(), name, hash_secret(secret), owner.id, wanted, now, expires)
            tx.insert(row)
            audit(tx, by, "token.create", name, principal=owner.name, roles=wanted)
            return row

        return secret, await self.store.write(write)

    async def tokens(self) -> list[tuple[TokenRow, str]]:
        """Every token, with the name of its principal."""

        def read(r: Reader) -> list[tuple[TokenRow, str]]:
            names = {p.id: p.name for p in r.select(PrincipalRow)}
            return [(t, names.get(t.principal_id, "?")) for t in r.select(TokenRow, "created_at")]

        return await self.store.read(read)

    async def revoke_token(self, name: str, by: str | None = None) -> TokenRow:
        name = check_name(name, "token name")

        def write(tx: Tx) -> TokenRow:
            row = _one(tx.select(TokenRow, name=name))
            if row is None:
                raise NotFound(f"no token {name!r}: `hitl token list` shows them")
            if row.revoked_at is None:
                row.revoked_at = time.time()
                tx.change(TokenRow, {"id": row.id}, revoked_at=row.revoked_at)
                audit(tx, by, "token.revoke", name)
            return row

        row = await self.store.write(write)
        self._cache.pop(row.hash, None)
        return row

    async def authenticate(self, secret: str) -> Principal | None:
        """The principal of a token, or None: unknown, revoked, expired or disabled."""
        key = hash_secret(secret)
        hit, known = self._cached(key)
        if hit:
            return known
        token, owner = await self.store.read(lambda r: _with_owner(r, TokenRow, key))
        now = time.time()
        if (
            token is None
            or owner is None
            or token.revoked_at is not None
            or (token.expires_at is not None and token.expires_at <= now)
            or owner.disabled_at is not None
        ):
            return self._remember(key, None)
        await self._mark_used(token, now)
        principal = _principal(owner, _token_roles(token, owner), "token")
        return self._remember(key, principal, token.expires_at)

    def _cached(self, key: str) -> tuple[bool, Principal | None]:
        """(True, who) if `key` was checked less than CACHE_SECONDS ago; else (False, None)."""
        entry = self._cache.get(key)
        if entry is not None and time.time() < entry[1]:
            return True, entry[0]
        return False, None

    def _remember(
        self, key: str, principal: Principal | None, expires: float | None = None
    ) -> Principal | None:
        """Keep a check's answer for CACHE_SECONDS, or until the credential expires."""
        until = time.time() + CACHE_SECONDS
        self._cache[key] = (principal, min(until, expires) if expires is not None else until)
        return principal

    async def _mark_used(self, token: TokenRow, now: float) -> None:
        last = self._used.get(token.id, token.last_used_at or 0.0)
        if now - last < LAST_USED_EVERY:
            return
        self._used[token.id] = now
        await self.store.write(lambda tx: tx.change(TokenRow, {"id": token.id}, last_used_at=now))

    # -- sign-in links and sessions --------------------------------------------------------------

    async def login_link(self, name: str, by: str | None = None) -> str:
        """A one-time sign-in secret for user `name`, valid for `LINK_SECONDS`."""
        secret = secrets.token_urlsafe(32)
        now = time.time()

        def write(tx: Tx) -> None:
            user = _one(tx.select(PrincipalRow, name=check_name(name)))
            if user is None or user.kind != "user":
                raise NotFound(f"no user {name!r}: add it first with `hitl user add`")
            if user.disabled_at is not None:
                raise Conflict(f"{name!r} is disabled")
            tx.insert(LinkRow(hash_secret(secret), user.id, now, now + LINK_SECONDS))
            audit(tx, by, "link.create", user.name)

        await self.store.write(write)
        return secret

    async def link_user(self, link: str) -> str | None:
        """The name of the user a sign-in link is for, if it can still be used."""

        def read(r: Reader) -> str | None:
            row = _one(r.select(LinkRow, hash=hash_secret(link)))
            if row is None or row.used_at is not None or row.expires_at <= time.time():
                return None
            user = _one(r.select(PrincipalRow, id=row.principal_id))
            return user.name if user is not None and user.disabled_at is None else None

        return await self.store.read(read)

    async def first_admin_link(self) -> str | None:
        """On a first run, with no admin: make the user `admin` and a sign-in link for it."""

        def write(tx: Tx) -> bool:
            admins = [p for p in tx.select(PrincipalRow) if "admin" in p.roles.split()]
            if admins:
                return False
            if not tx.select(PrincipalRow, name=FIRST_ADMIN):
                tx.insert(PrincipalRow(new_id(), FIRST_ADMIN, "user", "admin", time.time()))
                audit(tx, None, "user.add", FIRST_ADMIN, roles="admin", kind="user")
            return True

        if not await self.store.write(write):
            return None
        return await self.login_link(FIRST_ADMIN)

    async def sign_in(
        self, link: str, session_seconds: float, address: str | None = None
    ) -> tuple[str, Principal]:
        """Use a sign-in link (once): a new session's secret, and who it is for."""
        secret = secrets.token_urlsafe(32)
        now = time.time()

        def write(tx: Tx) -> Principal:
            row = _one(tx.select(LinkRow, hash=hash_secret(link)))
            if row is None or row.used_at is not None or row.expires_at <= now:
                raise Invalid("this sign-in link is unknown, used or expired: ask for a new one")
            [user] = tx.select(PrincipalRow, id=row.principal_id)
            if user.disabled_at is not None:
                raise Invalid("this sign-in link is unknown, used or expired: ask for a new one")
            tx.change(LinkRow, {"hash": row.hash, "used_at": None}, used_at=now)
            return _start_session(tx, user, secret, "link", now, session_seconds, address)

        return secret, await self.store.write(write)

    async def sign_in_external(
        self,
        name: str,
        email: str | None,
        roles: Iterable[str],
        via: str,
        session_seconds: float,
        address: str | None = None,
        subject: str | None = None,
    ) -> tuple[str, Principal]:
        """Sign in someone an identity provider vouches for: a new session's secret, and who
        it is for. The provider is the source of truth for their roles: a first sign-in makes
        the user, each later one sets its roles to `roles`. `subject` is the provider's id
        for them, kept in the audit log."""
        name = check_name(name)
        roles = set(roles)
        if not roles:
            raise Forbidden(
                "your identity provider gives you no hitl role: ask for one of " + ", ".join(ROLES)
            )
        wanted = roles_text(roles)
        email = _address_or_none(email)
        secret = secrets.token_urlsafe(32)
        now = time.time()
        source = {"via": via, "subject": subject} if subject else {"via": via}

        def write(tx: Tx) -> tuple[Principal, bool]:
            changed = False
            user = _one(tx.select(PrincipalRow, name=name))
            if user is None:
                user = PrincipalRow(new_id(), name, "user", wanted, now, email)
                tx.insert(user)
                audit(tx, name, "user.add", name, address, roles=wanted, kind="user", **source)
            elif user.kind != "user":
                raise Forbidden(f"{name!r} is a service account here: it cannot sign in")
            elif user.disabled_at is not None:
                raise Forbidden(f"{name!r} is disabled in hitl: ask an admin")
            elif user.roles != wanted:
                tx.change(PrincipalRow, {"id": user.id}, roles=wanted)
                audit(tx, name, "user.roles", name, address, roles=wanted, was=user.roles, **source)
                user.roles, changed = wanted, True
            principal = _start_session(tx, user, secret, via, now, session_seconds, address)
            return principal, changed

        principal, changed = await self.store.write(write)
        if changed:
            self._cache.clear()  # the user's other sessions take their new roles at once
        return secret, principal

    async def session(self, secret: str) -> Principal | None:
        key = hash_secret(secret)
        hit, known = self._cached(key)
        if hit:
            return known
        row, owner = await self.store.read(lambda r: _with_owner(r, SessionRow, key))
        if (
            row is None
            or owner is None
            or row.revoked_at is not None
            or row.expires_at <= time.time()
            or owner.disabled_at is not None
        ):
            return self._remember(key, None)
        return self._remember(key, _principal(owner, owner.roles, "session"), row.expires_at)

    async def named(self, name: str) -> Principal | None:
        """A user named by a trusted authenticating proxy, if it exists and is enabled."""
        name = unicodedata.normalize("NFC", name.strip())
        key = "user:" + name
        hit, known = self._cached(key)
        if hit:
            return known
        row = await self.store.read(lambda r: _one(r.select(PrincipalRow, name=name)))
        if row is None or row.kind != "user" or row.disabled_at is not None:
            return self._remember(key, None)
        return self._remember(key, _principal(row, row.roles, "proxy"))

    async def sign_out(self, secret: str, address: str | None = None) -> None:
        key = hash_secret(secret)
        now = time.time()

        def write(tx: Tx) -> None:
            row = _one(tx.select(SessionRow, hash=key))
            if row is None or row.revoked_at is not None:
                return
            tx.change(SessionRow, {"id": row.id}, revoked_at=now)
            [user] = tx.select(PrincipalRow, id=row.principal_id)
            audit(tx, user.name, "sign_out", user.name, address)

        await self.store.write(write)
        self._cache.pop(key, None)

    # -- audit -----------------------------------------------------------------------------------

    async def audit_log(
        self, since: float, after: int = 0, limit: int = 1000, by: Principal | None = None
    ) -> list[AuditRow]:
        access.administer(by, "read the audit log")
        return await self.store.read(lambda r: r.audit_since(since, after, limit))
