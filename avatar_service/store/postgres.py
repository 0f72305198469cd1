"""Avatar store in PostgreSQL: one shared registry for any number of stateless replicas.

Each avatar is one row (metadata plus the precomputed state bytes), written in one transaction, so a
reader sees all of it or none, and a committed `put` survives a crash of the replica or the database
(PostgreSQL's default synchronous commit). The schema is brought up to date at start-up under an
advisory lock, so replicas that start together migrate once and the rest wait, then find it done.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
import threading
import time
import urllib.parse

import psycopg
from psycopg import sql

from avatar_service.errors import Unavailable
from avatar_service.store.base import POSTGRES_SCHEMES, AvatarRecord

log = logging.getLogger(__name__)

_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# Any constant works as long as every replica uses the same one; this spells "avatarlb" in ASCII.
MIGRATION_LOCK_KEY = 0x6176617461726C62
MIGRATIONS_TABLE = "avatarlab_schema_migrations"


@dataclasses.dataclass(frozen=True)
class Migration:
    version: int  # applied in ascending order; never renumber or edit one that has shipped
    name: str
    sql: str


MIGRATIONS: list[Migration] = [
    Migration(1, "avatars table", """
        CREATE TABLE avatars (
            avatar_id            text PRIMARY KEY CHECK (avatar_id ~ '^[A-Za-z0-9_-]{1,64}$'),
            display_name         text NOT NULL,
            source_kind          integer NOT NULL,
            face_px              integer NOT NULL,
            pose_frame_count     integer NOT NULL,
            create_time_unix_ms  bigint NOT NULL,
            model_id             text NOT NULL,
            state                bytea NOT NULL
        );
        -- ListAvatars pages oldest first
        CREATE INDEX avatars_by_create_time ON avatars (create_time_unix_ms, avatar_id);
    """),
]

_META = "avatar_id, display_name, source_kind, face_px, pose_frame_count, create_time_unix_ms, model_id"


def redact(url: str) -> str:
    """The URL without its password, for logs and error messages."""
    p = urllib.parse.urlsplit(url)
    if p.password is None:
        return url
    netloc = p.netloc.replace(f":{p.password}@", ":***@", 1)
    return urllib.parse.urlunsplit(p._replace(netloc=netloc))


def migrate(conn: psycopg.Connection, migrations: list[Migration] = MIGRATIONS) -> list[int]:
    """Apply the migrations this database lacks, in one transaction under an advisory lock.

    Returns the versions applied now (empty when the schema was already current)."""
    with conn.transaction():
        # Transaction-scoped: released at commit or rollback, even if this process dies mid-way.
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
        conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} (version integer PRIMARY KEY, name text NOT NULL, "
                             "applied_at timestamptz NOT NULL DEFAULT now())").format(sql.Identifier(MIGRATIONS_TABLE)))
        done = {v for (v,) in conn.execute(sql.SQL("SELECT version FROM {}").format(sql.Identifier(MIGRATIONS_TABLE)))}
        applied = []
        for m in sorted(migrations, key=lambda m: m.version):
            if m.version in done:
                continue
            conn.execute(m.sql)
            conn.execute(sql.SQL("INSERT INTO {} (version, name) VALUES (%s, %s)").format(
                sql.Identifier(MIGRATIONS_TABLE)), (m.version, m.name))
            applied.append(m.version)
        newer = sorted(v for v in done if v > max((m.version for m in migrations), default=0))
        if newer:  # a rolling upgrade: newer replicas migrated first; migrations stay backward compatible
            log.warning("the registry schema has versions %s that this server does not know", newer)
    return applied


class PostgresAvatarStore:
    """AvatarStore over PostgreSQL. Thread-safe: each call borrows a connection from a small pool."""

    def __init__(self, url: str, pool_size: int = 8, connect_timeout_s: float = 10.0,
                 statement_timeout_ms: int = 30_000, startup_wait_s: float = 60.0):
        if not url.startswith(POSTGRES_SCHEMES):
            raise ValueError(f"not a PostgreSQL URL: {redact(url)!r} (expected postgresql://user@host:port/db)")
        self.url = url
        self._kw = {"connect_timeout": max(1, round(connect_timeout_s)),
                    "options": f"-c statement_timeout={int(statement_timeout_ms)}",
                    "application_name": "avatarlab"}
        self._idle: list[psycopg.Connection] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(pool_size)
        applied = self._migrate_when_reachable(startup_wait_s)
        log.info("avatar registry at %s%s", redact(url), f" (migrated to v{applied[-1]})" if applied else "")

    def _migrate_when_reachable(self, wait_s: float) -> list[int]:
        """Replicas often start alongside the database (compose, a fresh cluster): wait for it a while."""
        deadline = time.monotonic() + wait_s
        delay = 0.5
        while True:
            try:
                with self._conn() as conn:
                    return migrate(conn)
            except Unavailable as e:
                if time.monotonic() + delay > deadline:
                    raise
                log.warning("%s; retrying in %.1f s", e.message, delay)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    # -- connections ---------------------------------------------------------------------------------
    def _connect(self) -> psycopg.Connection:
        try:
            return psycopg.connect(self.url, autocommit=True, **self._kw)
        except psycopg.OperationalError as e:
            raise Unavailable(f"the avatar registry at {redact(self.url)} is unreachable: "
                              f"{str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__}") from None

    @contextlib.contextmanager
    def _conn(self):
        """A connection for the duration of one call; a broken one is closed, not pooled."""
        with self._slots:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None or conn.closed:
                conn = self._connect()
            try:
                yield conn
            except psycopg.OperationalError as e:  # connection lost (database restart, network)
                conn.close()
                raise Unavailable(f"the avatar registry at {redact(self.url)} failed: "
                                  f"{str(e).strip() or type(e).__name__}") from None
            finally:
                if not conn.closed and not conn.broken:
                    with self._lock:
                        self._idle.append(conn)
                else:
                    conn.close()

    def _run(self, query, params=(), fetch: str = "none", retries: int = 1):
        """One statement. A pooled connection may have gone stale while idle (database restart), so a
        failure to reach the database is retried on a fresh connection."""
        for attempt in range(retries + 1):
            try:
                with self._conn() as conn:
                    cur = conn.execute(query, params)
                    if fetch == "one":
                        return cur.fetchone()
                    if fetch == "all":
                        return cur.fetchall()
                    return cur.rowcount
            except Unavailable:
                if attempt == retries:
                    raise

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for c in idle:
            c.close()

    # -- AvatarStore -----------------------------------------------------------------------------------
    def put(self, record: AvatarRecord, state: bytes) -> None:
        if not _ID.match(record.avatar_id or ""):
            raise ValueError(f"bad avatar id {record.avatar_id!r}")
        r = record
        row = (r.avatar_id, r.display_name, r.source_kind, r.face_px, r.pose_frame_count, r.create_time_unix_ms,
               r.model_id)
        try:
            # Autocommit: the INSERT is its own transaction and returns once the commit is durable.
            self._run(f"INSERT INTO avatars ({_META}, state) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)", (*row, state))
        except psycopg.errors.UniqueViolation:
            # A retry after a lost reply finds its own first attempt committed: that is success.
            if self.get(r.avatar_id) == record and self.load_state(r.avatar_id) == state:
                return
            raise ValueError(f"avatar id {record.avatar_id!r} already exists") from None

    def get(self, avatar_id: str) -> AvatarRecord | None:
        if not _ID.match(avatar_id or ""):
            return None
        row = self._run(f"SELECT {_META} FROM avatars WHERE avatar_id = %s", (avatar_id,), "one")
        return AvatarRecord(*row) if row else None

    def load_state(self, avatar_id: str) -> bytes | None:
        if not _ID.match(avatar_id or ""):
            return None
        row = self._run("SELECT state FROM avatars WHERE avatar_id = %s", (avatar_id,), "one")
        return bytes(row[0]) if row else None

    def list(self) -> list[AvatarRecord]:
        rows = self._run(f"SELECT {_META} FROM avatars ORDER BY create_time_unix_ms, avatar_id", (), "all")
        return [AvatarRecord(*row) for row in rows]

    def delete(self, avatar_id: str) -> bool:
        if not _ID.match(avatar_id or ""):
            return False
        return self._run("DELETE FROM avatars WHERE avatar_id = %s", (avatar_id,)) > 0

    def count(self) -> int:
        return self._run("SELECT count(*) FROM avatars", (), "one")[0]
