"""Where analysed frames are kept: one SQLAlchemy (Core) code path for SQLite and PostgreSQL.

One row per ``(camera_id, frame_id)``, enforced by a unique constraint: that constraint, not a
read-then-write, decides which of two concurrent identical requests stores its result, so a frame
is never stored or counted twice, also across restarts. The row holds the whole
:class:`shared.wire.AnalyzeResult` as JSON plus the columns queries filter on.

The schema is created at start (``create_all``, idempotent); there are no migrations yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import IntegrityError

from shared.wire import AnalyzeResult

metadata = sa.MetaData()

results = sa.Table(
    "results",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("camera_id", sa.String(128), nullable=False),
    sa.Column("frame_id", sa.BigInteger(), nullable=False),
    sa.Column("captured_at", sa.Float(), nullable=False),
    sa.Column("received_at", sa.Float(), nullable=False),
    sa.Column("codec", sa.String(32), nullable=False),
    sa.Column("bits", sa.BigInteger(), nullable=False),
    sa.Column("result", sa.Text(), nullable=False),  # AnalyzeResult JSON, duplicate=false
    sa.UniqueConstraint("camera_id", "frame_id", name="uq_results_camera_frame"),
    sa.Index("ix_results_camera_captured", "camera_id", "captured_at"),
    sa.Index("ix_results_captured", "captured_at"),
)


@dataclass(frozen=True)
class Stored:
    """What :meth:`ResultStore.add` did: the result now on record, and whether it was there before."""

    result: AnalyzeResult
    duplicate: bool


def engine_url(url: str) -> sa.URL:
    """The SQLAlchemy URL: ``postgresql://`` gets the psycopg (3) driver, SQLite's parent folder is created."""
    u = make_url(url)
    if u.drivername == "postgresql":
        u = u.set(drivername="postgresql+psycopg")
    if u.get_backend_name() == "sqlite" and u.database and u.database != ":memory:":
        Path(u.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    return u


def _sqlite_pragmas(dbapi_conn: object, _record: object) -> None:
    # WAL lets /results read while /analyze writes; busy_timeout waits for a writer instead of failing
    cur = dbapi_conn.cursor()  # type: ignore[attr-defined]
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.close()


class ResultStore:
    """Blocking calls (run them off the event loop); safe to share between threads."""

    def __init__(self, url: str, *, pool_size: int = 5) -> None:
        u = engine_url(url)
        self.backend = u.get_backend_name()
        kwargs: dict[str, object] = {"pool_pre_ping": True}
        if self.backend != "sqlite":
            kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_timeout=10)
        self.engine: Engine = sa.create_engine(u, **kwargs)
        if self.backend == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        self.url = u.render_as_string(hide_password=True)

    def create_schema(self) -> None:
        metadata.create_all(self.engine)

    def ping(self) -> None:
        """One round trip to the database (raises when it does not answer)."""
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1")).scalar_one()

    def get(self, camera_id: str, frame_id: int) -> AnalyzeResult | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(results.c.result).where(results.c.camera_id == camera_id, results.c.frame_id == frame_id)
            ).scalar_one_or_none()
        return None if row is None else AnalyzeResult.model_validate_json(row)

    def add(self, result: AnalyzeResult) -> Stored:
        """Store ``result`` unless its (camera, frame) is already stored; then return the stored one."""
        stored = result.model_copy(update={"duplicate": False})
        try:
            with self.engine.begin() as conn:
                conn.execute(results.insert().values(
                    camera_id=stored.camera_id, frame_id=stored.frame_id, captured_at=stored.captured_at,
                    received_at=stored.received_at, codec=stored.codec, bits=stored.bits,
                    result=stored.model_dump_json()))
        except IntegrityError:
            earlier = self.get(stored.camera_id, stored.frame_id)
            if earlier is None:  # not our unique constraint (cannot happen with this schema): re-raise
                raise
            return Stored(earlier, duplicate=True)
        return Stored(stored, duplicate=False)

    def query(self, camera_id: str | None = None, since: float | None = None, until: float | None = None,
              limit: int = 100) -> list[AnalyzeResult]:
        """Stored results by capture time (``since`` ≤ captured_at < ``until``), oldest first."""
        q = sa.select(results.c.result)
        if camera_id is not None:
            q = q.where(results.c.camera_id == camera_id)
        if since is not None:
            q = q.where(results.c.captured_at >= since)
        if until is not None:
            q = q.where(results.c.captured_at < until)
        q = q.order_by(results.c.captured_at, results.c.camera_id, results.c.frame_id).limit(limit)
        with self.engine.connect() as conn:
            rows = conn.execute(q).scalars().all()
        return [AnalyzeResult.model_validate_json(r) for r in rows]

    def count(self, camera_id: str | None = None) -> int:
        q = sa.select(sa.func.count()).select_from(results)
        if camera_id is not None:
            q = q.where(results.c.camera_id == camera_id)
        with self.engine.connect() as conn:
            return int(conn.execute(q).scalar_one())

    def close(self) -> None:
        self.engine.dispose()
