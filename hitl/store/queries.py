"""Every statement the store runs, kept together, written once for both backends.

Parameters are written `:name`; `for_dialect` turns them into psycopg's `%(name)s` for
PostgreSQL (SQLite's driver takes `:name` as it is). Statements run through the driver
directly: SQLAlchemy Core's statement building cost several times the SQL itself on the hot
path. The schema stays in `tables.py`, where Alembic reads it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from hitl.store.rows import EVENT_COLUMNS, REVIEW_COLUMNS, TASK_COLUMNS

TASK = "tasks"
REVIEW = "reviews"

# Rows are read by naming their columns, in the order of their dataclass in `rows.py`.
T = ", ".join(TASK_COLUMNS)
R = ", ".join(REVIEW_COLUMNS)
E = ", ".join(EVENT_COLUMNS)

GET_TASK = f"SELECT {T} FROM tasks WHERE id = :id"
TASK_BY_KEY = f"SELECT {T} FROM tasks WHERE idempotency_key = :key"
GET_REVIEW = f"SELECT {R} FROM reviews WHERE id = :id"
LOCK_TASK = "SELECT 1 FROM tasks WHERE id = :id FOR UPDATE"
LAST_REVIEW = f"SELECT {R} FROM reviews WHERE task_id = :task_id ORDER BY round DESC LIMIT 1"
REVIEWS_OF = f"SELECT {R} FROM reviews WHERE task_id = :task_id ORDER BY round"
ADD_EVENT = (
    "INSERT INTO events (task_id, type, data, created_at) "
    "VALUES (:task_id, :type, :data, :created_at)"
)
NOTIFY = "SELECT pg_notify(:channel, '')"
EXPIRE_LEASES = "UPDATE tasks SET lease_expires_at = 0 WHERE status = :running"
EXPIRE_LEASES_OF = (
    "UPDATE tasks SET lease_expires_at = 0 "
    "WHERE status = :running AND substr(lease_owner, 1, :n) = :prefix"
)
DUE_REVIEWS = (
    "SELECT id FROM reviews WHERE status = :open AND deadline <= :now "
    "ORDER BY deadline LIMIT :limit"
)
OPEN_BY_NODE = (
    "SELECT t.flow, r.node, count(*), min(r.created_at) FROM reviews r "
    "JOIN tasks t ON t.id = r.task_id WHERE r.status = :open GROUP BY t.flow, r.node "
    "ORDER BY t.flow, r.node"
)
# Open reviews whose deadline is near, not yet said: less than `warn` seconds left, and less
# than a fifth of the review's whole time.
DUE_WARNINGS = (
    "SELECT id FROM reviews WHERE status = :open AND warned_at IS NULL AND deadline > :now "
    "AND deadline <= :now + :warn AND 5 * (deadline - :now) <= deadline - created_at "
    "ORDER BY deadline LIMIT :limit"
)
WARN_REVIEW = (
    "UPDATE reviews SET warned_at = :now WHERE id = :id AND status = :open AND warned_at IS NULL"
)
_CLAIM_DELIVERIES = (
    "UPDATE deliveries SET lease_until = :until, lease_owner = :owner, attempts = attempts + 1 "
    "WHERE id IN "
    "(SELECT id FROM deliveries WHERE status = :pending AND next_at <= :now "
    "AND (lease_until IS NULL OR lease_until < :now) ORDER BY next_at LIMIT :limit{lock}) "
    "RETURNING {columns}"
)
LAST_EVENT = "SELECT max(id) FROM events"
EVENT = f"SELECT {E} FROM events WHERE id = :id"
LAST_TASK_EVENT = "SELECT max(id) FROM events WHERE task_id = :task_id"
# A task, its latest review (NULLs if none) and, in the second, its last event's id, in one
# statement: one round trip on PostgreSQL, and one moment without a transaction around it.
_TR = ", ".join(f"r.{c}" for c in REVIEW_COLUMNS)
_TT = ", ".join(f"t.{c}" for c in TASK_COLUMNS)
_TASK_AND_LAST_REVIEW = (
    f"SELECT {_TT}, {_TR}{{last}} FROM tasks t LEFT JOIN reviews r ON r.id = ("
    "SELECT id FROM reviews WHERE task_id = t.id ORDER BY round DESC LIMIT 1) "
    "WHERE t.id = :task_id"
)
TASK_AND_LAST_REVIEW = _TASK_AND_LAST_REVIEW.format(last="")
TASK_LAST_REVIEW_AND_EVENT = _TASK_AND_LAST_REVIEW.format(last=f", ({LAST_TASK_EVENT})")
EVENTS_AFTER = f"SELECT {E} FROM events WHERE id > :after ORDER BY id LIMIT :limit"
TASK_EVENTS_AFTER = (
    f"SELECT {E} FROM events WHERE task_id = :task_id AND id > :after ORDER BY id LIMIT :limit"
)
EVENTS_BETWEEN = (
    f"SELECT {E} FROM events WHERE id > :after AND id <= :upto ORDER BY id LIMIT :limit"
)
TASK_EVENTS_BETWEEN = (
    f"SELECT {E} FROM events WHERE task_id = :task_id AND id > :after AND id <= :upto "
    "ORDER BY id LIMIT :limit"
)
LIST_TASKS = f"SELECT {T} FROM tasks ORDER BY created_at DESC, id LIMIT :limit OFFSET :offset"
LIST_TASKS_BY_STATUS = (
    f"SELECT {T} FROM tasks WHERE status = :status ORDER BY created_at DESC, id "
    "LIMIT :limit OFFSET :offset"
)
COUNT_TASKS = "SELECT count(*) FROM tasks"


def _seen(mine: bool, reviewed: bool) -> str:
    """The tasks one principal may see (`access.may_see`): theirs (`:mine`), and, for a
    reviewer, those that reached a review."""
    seen = [t for t, on in (("created_by = :mine", mine), ("round > 0", reviewed)) if on]
    return "(" + " OR ".join(seen or ["1 = 0"]) + ")"


@lru_cache(maxsize=16)
def visible_tasks(status: bool, mine: bool, reviewed: bool) -> tuple[str, str]:
    """A page of tasks (and their count) limited to one principal's (`_seen`)."""
    terms = [_seen(mine, reviewed)]
    if status:
        terms.append("status = :status")
    where = " WHERE " + " AND ".join(terms)
    page = f"SELECT {T} FROM tasks{where} ORDER BY created_at DESC, id LIMIT :limit OFFSET :offset"
    return page, f"SELECT count(*) FROM tasks{where}"


@lru_cache(maxsize=8)
def tasks_by_part(end: bool, seen: tuple[bool, bool] | None) -> str:
    """Tasks whose id starts with `:prefix` (`:n` characters), compared as bytes on both
    databases (a range on the primary key would depend on PostgreSQL's collation, in which '~'
    may sort before the digits), or (`end`) matches `:pattern`, the random end of an id. Both
    read every id, as the CLI's look-up by a few characters may. With `seen` (mine, reviewed),
    only those one principal may see (`_seen`)."""
    match = "id LIKE :pattern" if end else "substr(id, 1, :n) = :prefix"
    where = f"{match} AND {_seen(*seen)}" if seen is not None else match
    return f"SELECT {T} FROM tasks WHERE {where} ORDER BY id LIMIT :limit"


COUNT_TASKS_BY_STATUS = "SELECT count(*) FROM tasks WHERE status = :status"
QUEUE_ORDER = {
    "oldest": "r.created_at, r.id",
    "newest": "r.created_at DESC, r.id",
    # Those with a deadline first, the nearest first; then the oldest. The expression is
    # `ix_reviews_queue_deadline`'s, so that index gives this order without a sort.
    "deadline": "r.deadline IS NULL, r.deadline, r.created_at, r.id",
}
# A review's searchable text (`search.py`) contains `:text`: through the index for a query of
# three characters or more, else by reading each candidate's text.
QUEUE_TEXT = {
    # `review_search` is FTS5 over `reviews.search`, its rowid `reviews.search_id`: the query
    # starts from its matches (`QUEUE_MATCHES`), which hold the condition.
    ("sqlite", False): "instr(r.search, :text) > 0",
    ("postgresql", True): "r.search LIKE :text ESCAPE '!'",  # the pg_trgm GIN index
    ("postgresql", False): "strpos(r.search, :text) > 0",
}
# SQLite: the matches first, each looked up in `ix_reviews_search_id` (which holds the status,
# the sort keys and the assignees): its cost follows the matches, not the status's reviews.
# Without CROSS JOIN, which fixes the order, SQLite walked every review of the status to find
# ten matches. The matches are the index's (`:text`, an FTS5 phrase) and the tail's: the few
# reviews not indexed yet (`search_id` above `search_indexed.upto`, migration 0007), whose
# text is read (`:tail`, the folded text itself).
SEARCH_INDEXED = "(SELECT upto FROM search_indexed)"
QUEUE_MATCHES = (
    "(SELECT rowid AS search_id FROM review_search WHERE review_search MATCH :text "
    "UNION ALL SELECT search_id FROM reviews "
    f"WHERE search_id > {SEARCH_INDEXED} AND instr(search, :tail) > 0) AS matched "
    "CROSS JOIN reviews r ON r.search_id = matched.search_id"
)
# SQLite: the tail into the index, all of it, and `upto` past it (`SqlStore._transact`).
INDEX_SEARCH_TAIL = (
    "INSERT INTO review_search (rowid, search) SELECT search_id, search FROM reviews "
    f"WHERE search_id > {SEARCH_INDEXED} ORDER BY search_id"
)
MARK_SEARCH_INDEXED = (
    "UPDATE search_indexed SET upto = max(upto, coalesce((SELECT max(search_id) FROM reviews), 0))"
)
QUEUE_COLUMNS = ", ".join(f"r.{c}" for c in REVIEW_COLUMNS) + ", t.flow, t.input, t.created_by"


# A review of the decider's own task only if it allows self-review (`access.decide`): the ids
# of those reviews are read once (`ix_tasks_created_by`), not each review's task, and checked
# against the review's id (which `ix_reviews_search_id` holds); CASE, so that only those few
# have their request parsed.
QUEUE_OWN_REVIEWS = (
    "r.id IN (SELECT own.id FROM tasks mine JOIN reviews own ON own.task_id = mine.id "
    "WHERE mine.created_by = :decider)"
)
# Not a review the decider has voted on already (a quorum's: `votes`' key, review and voter).
QUEUE_NOT_VOTED = (
    "NOT EXISTS (SELECT 1 FROM votes v WHERE v.review_id = r.id AND v.voter = :decider)"
)
QUEUE_SELF_REVIEW = "r.self_review"  # (migration 0008)


@lru_cache(maxsize=256)
def review_queue(
    status: bool,
    flow: bool,
    text: bool | None,
    assigned: int,
    order: str,
    dialect: str,
    decider: int | None = None,
) -> tuple[str, str]:
    """A page of reviews with their task's flow and input (and its count): of one `status`,
    one `flow`, whose searchable text contains `:text` (`text`: True through the index, False
    by a scan, None: no text), assigned to any of `assigned` names (`:a0`, `:a1`, ... as they
    appear in the `assignee` column, `,name,`), that `:decider` may decide (`decider`: None,
    anyone may; else how many names make them an assignee, `:d0`, `:d1`, ..., or -1 for any).

    The page's reviews are chosen by their id and sort keys alone, then read with their task:
    when the text matches thousands, only the 50 shown are joined and their JSON read. The
    count joins the tasks only to filter by flow."""
    terms = []
    if status:
        terms.append("r.status = :status")
    if flow:
        terms.append("t.flow = :flow")
    if text is not None and (dialect, text) != ("sqlite", True):  # (that one: QUEUE_MATCHES)
        terms.append(QUEUE_TEXT[dialect, text])
    if assigned:
        names = " OR ".join(f"r.assignee LIKE :a{i} ESCAPE '!'" for i in range(assigned))
        terms.append(f"({names})")
    if decider is not None:
        if decider >= 0:
            names = " OR ".join(
                [
                    "r.assignee IS NULL",
                    *(f"r.assignee LIKE :d{i} ESCAPE '!'" for i in range(decider)),
                ]
            )
            terms.append(f"({names})")
        terms.append(f"CASE WHEN {QUEUE_OWN_REVIEWS} THEN {QUEUE_SELF_REVIEW} ELSE TRUE END")
        terms.append(QUEUE_NOT_VOTED)
    where = (" WHERE " + " AND ".join(terms)) if terms else ""
    tasks = " JOIN tasks t ON t.id = r.task_id" if flow else ""
    reviews = QUEUE_MATCHES if dialect == "sqlite" and text else "reviews r"
    source = f"FROM {reviews}{tasks}{where}"
    chosen = f"SELECT r.id {source} ORDER BY {QUEUE_ORDER[order]} LIMIT :limit OFFSET :offset"
    page = (
        f"SELECT {QUEUE_COLUMNS} FROM reviews r JOIN tasks t ON t.id = r.task_id "
        f"WHERE r.id IN ({chosen}) ORDER BY {QUEUE_ORDER[order]}"
    )
    return page, f"SELECT count(*) {source}"


TASK_INPUT = "SELECT input FROM tasks WHERE id = :id"
REVIEW_TASK_INPUT = (
    "SELECT t.input FROM reviews r JOIN tasks t ON t.id = r.task_id WHERE r.id = :id"
)


@lru_cache(maxsize=16)
def insert_review(columns: Sequence[str], dialect: str) -> str:
    """Insert a review (its `columns` include `search`, its searchable text); on SQLite also
    its key in the FTS5 index, the next `search_id` (SQLite has one writer at a time: no two
    take the same)."""
    if dialect != "sqlite":
        return insert(REVIEW, columns)
    names = ", ".join((*columns, "search_id"))
    values = ", ".join(f":{c}" for c in columns)
    # Above every key the index ever held: a review deleted at the top must not hand its key
    # to one the index does not hold (migration 0007).
    following = f"max(coalesce((SELECT max(search_id) FROM reviews), 0), {SEARCH_INDEXED}) + 1"
    return f"INSERT INTO reviews ({names}) VALUES ({values}, {following})"


# Each claim is a lease of its own (`<worker>#<claim number>`), so a worker that claims back a
# task it is still running (its loop stalled past the lease) stops the stale run.
# Tasks whose lease expired (resumed after a decision, or orphaned by a dead worker) first,
# then the oldest queued: two indexed look-ups rather than one OR that scans every task
# (on PostgreSQL, both in one statement: `CLAIM_BOTH`).
_CLAIM = (
    "UPDATE tasks SET status = :running, lease_owner = :owner || '#' || (claims + 1), "
    "lease_expires_at = :until, "
    "claims = claims + 1, updated_at = :now "
    "WHERE id IN (SELECT id FROM tasks WHERE {pick} LIMIT :limit{lock}) RETURNING " + T
)
# A decided task handed straight to a worker of the deciding process: the decision's update is
# that worker's claim (one statement, and no second transaction to claim it).
TAKE = (
    "UPDATE tasks SET status = :running, lease_owner = :owner || '#' || (claims + 1), "
    "lease_expires_at = :until, claims = claims + 1, updated_at = :now "
    "WHERE id = :task_id AND status = :expected RETURNING " + T
)
CLAIM_EXPIRED = "status = :running AND lease_expires_at < :now ORDER BY lease_expires_at"
CLAIM_QUEUED = "status = :runnable ORDER BY created_at"


def claim_deliveries(dialect: str, columns: str) -> str:
    lock = " FOR UPDATE SKIP LOCKED" if dialect == "postgresql" else ""
    return _CLAIM_DELIVERIES.format(lock=lock, columns=columns)


def claim(pick: str, dialect: str) -> str:
    lock = " FOR UPDATE SKIP LOCKED" if dialect == "postgresql" else ""
    return _CLAIM.format(pick=pick, lock=lock)


# PostgreSQL: both look-ups in one statement, one round trip, with each task's latest review
# if it is past one (NULLs if not). Each CTE locks what it picks, so queued tasks picked beyond
# what the limit takes stay locked to the commit (other workers skip them meanwhile, and claim
# them next). `picked_as` is 0 for an expired lease, 1 for a queued task: the caller's order.
CLAIM_BOTH = (
    "WITH expired AS (SELECT id, lease_expires_at AS o FROM tasks WHERE "
    + CLAIM_EXPIRED
    + " LIMIT :limit FOR UPDATE SKIP LOCKED), "
    "queued AS (SELECT id, created_at AS o FROM tasks WHERE "
    + CLAIM_QUEUED
    + " LIMIT :limit FOR UPDATE SKIP LOCKED), "
    "picked AS (SELECT id AS pick, 0 AS picked_as, o FROM expired "
    "UNION ALL SELECT id, 1, o FROM queued ORDER BY picked_as, o LIMIT :limit), "
    "claimed AS (UPDATE tasks SET status = :running, "
    "lease_owner = :owner || '#' || (claims + 1), lease_expires_at = :until, "
    "claims = claims + 1, updated_at = :now "
    "FROM picked WHERE tasks.id = picked.pick RETURNING " + T + ", picked.picked_as) "
    "SELECT " + ", ".join(f"c.{c}" for c in TASK_COLUMNS) + ", c.picked_as, " + _TR + " "
    "FROM claimed c LEFT JOIN LATERAL (SELECT " + R + " FROM reviews WHERE task_id = c.id "
    "ORDER BY round DESC LIMIT 1) r ON c.round > 0"
)


# PostgreSQL hands out event ids when rows are inserted, not when they commit; a reader could
# see id 11 before a slower transaction commits id 10, and move past it. So a transaction
# appends its events last, in one statement that first takes this lock (held to the commit):
# ids become visible in order. The statement also notifies the listening processes.
_ADD_EVENTS_IN_ORDER = (
    "WITH ordered AS MATERIALIZED (SELECT pg_advisory_xact_lock(72627)), "
    "noted AS MATERIALIZED (SELECT pg_notify(:channel, ''){work} FROM ordered) "
    "INSERT INTO events (task_id, type, data, created_at) "
    "SELECT v.task_id, v.type, v.data, v.created_at FROM noted, (VALUES {rows}) "
    "AS v(n, task_id, type, data, created_at) ORDER BY v.n"
)


@lru_cache(maxsize=64)
def add_events_in_order(count: int, work: bool = False) -> str:
    """`count` events; with `work`, the workers' notice too (channel `:work`)."""
    rows = ", ".join(
        f"({i}, :task_id{i}, :type{i}, :data{i}, CAST(:created_at{i} AS DOUBLE PRECISION))"
        for i in range(count)
    )
    return _ADD_EVENTS_IN_ORDER.format(rows=rows, work=", pg_notify(:work, '')" if work else "")


@lru_cache(maxsize=256)
def insert(table: str, columns: Sequence[str]) -> str:
    names = ", ".join(columns)
    values = ", ".join(f":{c}" for c in columns)
    return f"INSERT INTO {table} ({names}) VALUES ({values})"


@lru_cache(maxsize=256)
def update(table: str, columns: Sequence[str], expected: int, by: str, owner: bool) -> str:
    """`UPDATE table SET columns WHERE by = :_by AND status IN (:_s0, ...) [AND owner]`."""
    sets = ", ".join(f"{c} = :{c}" for c in columns)
    statuses = ", ".join(f":_s{i}" for i in range(expected))
    sql = f"UPDATE {table} SET {sets} WHERE {by} = :_by AND status IN ({statuses})"
    return sql + (" AND lease_owner = :_owner" if owner else "")


_PARAM = re.compile(r"(?<![:\w]):(\w+)")


@lru_cache(maxsize=512)
def for_dialect(sql: str, dialect: str) -> str:
    return _PARAM.sub(r"%(\1)s", sql) if dialect == "postgresql" else sql


# -- identity and audit rows: plain look-ups by equal columns (None: IS NULL) -----------------

Where = tuple[tuple[str, bool], ...]  # (column, value is None)


def _where(where: Where) -> str:
    terms = [f"{c} IS NULL" if null else f"{c} = :w_{c}" for c, null in where]
    return " WHERE " + " AND ".join(terms) if terms else ""


@lru_cache(maxsize=128)
def select_rows(table: str, columns: tuple[str, ...], where: Where, order: str | None) -> str:
    sql = f"SELECT {', '.join(columns)} FROM {table}{_where(where)}"
    return sql + (f" ORDER BY {order}" if order else "") + " LIMIT :limit"


@lru_cache(maxsize=64)
def update_ids(table: str, columns: tuple[str, ...], count: int) -> str:
    """`UPDATE table SET columns WHERE id IN (:_i0, ..., :_i<count-1>)`."""
    sets = ", ".join(f"{c} = :{c}" for c in columns)
    ids = ", ".join(f":_i{n}" for n in range(count))
    return f"UPDATE {table} SET {sets} WHERE id IN ({ids})"


@lru_cache(maxsize=128)
def update_rows(table: str, columns: tuple[str, ...], where: Where) -> str:
    sets = ", ".join(f"{c} = :{c}" for c in columns)
    return f"UPDATE {table} SET {sets}{_where(where)}"


# A task's entries: its own (cancel, retry) and its reviews' (decisions).
AUDIT_OF_TASK = (
    "SELECT id, at, actor, action, target, address, detail FROM audit "
    "WHERE target = :task OR target IN (SELECT id FROM reviews WHERE task_id = :task) "
    "ORDER BY id"
)
AUDIT_SINCE = (
    "SELECT id, at, actor, action, target, address, detail FROM audit "
    "WHERE at >= :since AND id > :after ORDER BY id LIMIT :limit"
)
