"""Faults of the database that its driver does not report, or reports as something else.

SQLite keeps reading and writing a file that was deleted or replaced for as long as it has it
open, and a connection whose pages are cached does not notice that the file was overwritten:
every commit would be acknowledged, then missing (or unreadable) at the next start. So the store
asks its `Guard`, before each commit, after it and before each batch of reads, whether the file
at the database's path is still the one it opened and still begins with SQLite's header. If not,
the store is *broken*: it takes no more writes, and reads and `/readyz` answer with the reason,
which is logged once. A file that was deleted or replaced is first copied next to its path
(`<path>.lost-<time>-<pid>`), through a connection that the guard opened with the store's first
and keeps: it still has the lost file, and its write-ahead log, open, so the copy holds every
write the store acknowledged. A corrupt file (SQLite's own "file is not a database", "database
disk image is malformed") breaks the store in the same way.

A write that fails because the disk is full, or fails to write, makes `/readyz` fail until a
write succeeds again or (disk full) the file system has more free space than it had then; so
does less than `LOW_SPACE` free on the file system.

The guard also holds one descriptor on the database file, to read its header, from the store's
first connection until the store closes: a process that closes *any* descriptor of a file drops
all of its POSIX locks on that file, SQLite's included, so it is opened once and closed only
after every connection.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

log = logging.getLogger(__name__)

HEADER = b"SQLite format 3\x00"
# `/readyz` fails when the file system of a SQLite database has less free space than this.
LOW_SPACE = 1 << 20


class Fault(Exception):
    """The database cannot be used as it is; the message says why and what to do.

    `lasting`: it stays so until someone acts (a lost or corrupt file), rather than until
    space is freed."""

    def __init__(self, message: str, lasting: bool = True) -> None:
        super().__init__(message)
        self.lasting = lasting


@dataclass(frozen=True)
class _WriteFailure:
    reason: str
    free: int | None  # bytes free on the file system when the disk was full; None: unknown


def sqlite_path(url: str | sa.URL) -> Path | None:
    """The file of a SQLite URL, absolute; None for PostgreSQL, in-memory and `file:` URIs."""
    parsed = sa.make_url(url) if isinstance(url, str) else url
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:") or parsed.query.get("uri"):
        return None
    return Path(os.path.abspath(database))


def refusal(path: Path) -> str | None:
    """Why start-up must not create a new database file at `path`, if it must not: a store lost
    the file there and saved a copy, or the file is missing but its write-ahead log is not (a
    new file must not be paired with another database's log: SQLite would replay it)."""
    found = glob.glob(f"{glob.escape(str(path))}.lost-*")
    copies = sorted(c for c in found if not c.endswith(("-wal", "-shm", "-journal")))
    if copies:
        return (
            f"hitl lost the database file {path} while it ran, and saved it as {copies[-1]}: "
            f"move that copy to {path} and start again (or, to keep the file now at {path}, "
            f"move the copy elsewhere, with {path}-wal and {path}-shm if they are the lost "
            "database's)"
        )
    if path.exists():
        return None
    left = [p for p in (f"{path}-wal", f"{path}-shm") if os.path.exists(p)]
    if left:
        return (
            f"the database file {path} is missing, but {' and '.join(left)} remain: it was "
            "deleted or moved. Put it back, or delete them to start with an empty database"
        )
    return None


def sqlite_error(exc: BaseException) -> str:
    """SQLite's name for the error (SQLITE_FULL...), or ''."""
    orig = getattr(exc, "orig", None) or exc
    return str(getattr(orig, "sqlite_errorname", ""))


def is_corrupt(exc: BaseException) -> bool:
    name = sqlite_error(exc)
    return name == "SQLITE_NOTADB" or name.startswith("SQLITE_CORRUPT")


def first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    return (str(orig).strip().splitlines() or [type(orig).__name__])[0]


class Guard:
    """Watches the SQLite file behind one engine; for PostgreSQL it has nothing to watch."""

    def __init__(self, engine: sa.Engine) -> None:
        self.path = sqlite_path(engine.url) if engine.dialect.name == "sqlite" else None
        self._fd: int | None = None
        self._keeper: sqlite3.Connection | None = None  # open on the file the store opened
        self._identity: tuple[int, int] | None = None
        self._had_header = False
        self._broken: str | None = None
        self._rescue_pending = False
        self._failure: _WriteFailure | None = None
        self._lock = threading.Lock()
        if self.path is not None:
            sa.event.listen(engine, "do_connect", self._before_connect)
            sa.event.listen(engine, "connect", self._connected)

    def check(self) -> None:
        """Raise `Fault` if the database is broken (saving a lost file first)."""
        if self._broken is None and self._fd is not None:
            self._check_file()
        if self._broken is not None:
            if self._rescue_pending:
                self._rescue()
            raise Fault(self._broken)

    def after_commit(self, wrote: bool) -> None:
        """A commit into a file that vanished meanwhile is not acknowledged; one that wrote
        proves that the disk takes writes again."""
        self.check()
        if wrote:
            self._failure = None

    def classify(self, exc: BaseException) -> Fault | None:
        """Remember what a driver error says of the database; a corrupt file breaks it."""
        name = sqlite_error(exc)
        if not name:
            return None
        if is_corrupt(exc):
            self._break(
                f"the database file is corrupt ({first_line(exc)})",
                f"the database file {self.path} is corrupt ({first_line(exc)})",
                rescue=False,
            )
            return Fault(self._broken or "the database file is corrupt")
        if name == "SQLITE_FULL":
            self._fail("the disk holding the database is full: writes fail until space is freed")
        elif name.startswith("SQLITE_IOERR"):
            self._fail(f"the database's disk failed a write ({first_line(exc)})", known=False)
        return None

    def check_writable(self) -> None:
        """Raise `Fault` unless, as far as the guard can tell, a write would succeed."""
        self.check()
        failure, free = self._failure, self._free()
        if failure is not None and (free is None or failure.free is None or free <= failure.free):
            raise Fault(failure.reason, lasting=False)
        if free is not None and free < LOW_SPACE:
            raise Fault(
                f"the disk holding the database is nearly full ({free} bytes free)", lasting=False
            )

    def close(self) -> None:
        """After every connection of the store is closed (see the module's docstring)."""
        if self._keeper is not None:
            self._keeper.close()
            self._keeper = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _before_connect(self, dialect: Any, record: Any, cargs: Any, cparams: Any) -> None:
        # Refuse before SQLite opens the path: it would create a new, empty file there.
        self.check()

    def _connected(self, dbapi_connection: Any, record: Any) -> None:
        """The first connection fixes which file the database is."""
        with self._lock:
            if self._fd is not None or self.path is None:
                return
            try:
                fd = os.open(self.path, os.O_RDONLY)
                self._keeper = sqlite3.connect(self.path, check_same_thread=False)
                # A read opens the write-ahead log and shared memory: they stay open with it.
                self._keeper.execute("SELECT count(*) FROM sqlite_master").fetchall()
            except (OSError, sqlite3.Error) as exc:
                log.warning("cannot watch the database file %s: %s", self.path, exc)
                self.path = None
                return
            stat = os.fstat(fd)
            self._identity = (stat.st_dev, stat.st_ino)
            self._had_header = os.pread(fd, len(HEADER), 0) == HEADER
            self._fd = fd

    def _check_file(self) -> None:
        assert self._fd is not None and self.path is not None
        try:
            stat = os.stat(self.path)
            header = os.pread(self._fd, len(HEADER), 0)
        except (FileNotFoundError, NotADirectoryError):
            self._lose("deleted")
            return
        except OSError as exc:  # EACCES, EIO...: not known to be lost, but not usable now
            raise Fault(f"the database file cannot be read ({exc.strerror or exc})") from exc
        if (stat.st_dev, stat.st_ino) != self._identity:
            self._lose("replaced by another file")
            return
        if header == HEADER:
            self._had_header = True
        elif header or self._had_header:
            self._break(
                "the database file is corrupt (it was overwritten while hitl was running)",
                f"the database file {self.path} is corrupt: it no longer begins with SQLite's "
                "header (it was overwritten while hitl was running)",
                rescue=False,
            )

    def _lose(self, how: str) -> None:
        self._break(
            f"the database file was {how} while hitl was running",
            f"the database file {self.path} was {how} while hitl was running",
            rescue=True,
        )

    def _break(self, reason: str, detail: str, rescue: bool) -> None:
        with self._lock:
            if self._broken is not None:
                return
            self._broken = f"{reason}: nothing can be saved until it is restored and hitl restarted"
            self._rescue_pending = rescue
        log.critical(
            "%s; hitl takes no more writes. %s",
            detail,
            "It saves a copy of the database it had next to it."
            if rescue
            else "Stop hitl and restore the file from a backup.",
            extra={"action": "database_broken"},
        )

    def _rescue(self) -> None:
        """Copy the lost database, through the keeper, to a new file next to its path."""
        with self._lock:
            if not self._rescue_pending:
                return
            self._rescue_pending = False
        assert self.path is not None and self._keeper is not None
        copy = Path(f"{self.path}.lost-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}")
        created = False
        try:
            os.close(os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            created = True
            target = sqlite3.connect(copy)
            try:
                self._keeper.backup(target)
            finally:
                target.close()
        except Exception as exc:
            log.critical(
                "could not save a copy of the lost database at %s (%s): what it held since its "
                "last backup is lost",
                copy,
                first_line(exc),
                extra={"action": "database_rescue"},
            )
            if created:
                with contextlib.suppress(OSError):
                    copy.unlink()  # a part of a copy would pass for the whole
            return
        log.critical(
            "saved the lost database, with every write hitl acknowledged, at %s: stop hitl, "
            "move it to %s, and start hitl again",
            copy,
            self.path,
            extra={"action": "database_rescue"},
        )

    def _fail(self, reason: str, known: bool = True) -> None:
        """`known`: the disk is full, so more free space than now may mend it."""
        if self._failure is None or self._failure.reason != reason:
            log.warning("%s", reason, extra={"action": "database_write_failed"})
        self._failure = _WriteFailure(reason, self._free() if known else None)

    def _free(self) -> int | None:
        if self.path is None:
            return None
        try:
            fs = os.statvfs(self.path.parent)
        except OSError:
            return None
        blocks = fs.f_bfree if os.geteuid() == 0 else fs.f_bavail
        return blocks * fs.f_frsize
