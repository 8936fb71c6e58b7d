"""Models, databases and a signal journal for the SQLAlchemy bridge's tests.

Each test gets a fresh schema on one of four databases: SQLite through the sync
driver and through aiosqlite, and the machine's PostgreSQL through psycopg (sync) and
asyncpg (async). A scenario is a plain function of a sync ``Session``; on the async
databases it runs through ``AsyncSession.run_sync``, that is inside SQLAlchemy's
greenlet, exactly where an ``AsyncSession``'s flush runs.

pytest gives this folder's tests the fixtures; the models and helpers they name are
imported from ``tests.sqlalchemy.conftest`` (``tests`` is a package, so this module
and the root ``conftest.py`` do not collide).
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pytest
from sqlalchemy import Column, ForeignKey, String, Table, create_engine, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import (
    AsyncAttrs,
    AsyncEngine,
    AsyncSession,
    create_async_engine,
)
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    mapped_column,
    relationship,
)

import asignal.sqlalchemy
from asignal import Signal
from asignal.signals import (
    m2m_changed,
    post_delete,
    post_init,
    post_save,
    pre_delete,
    pre_init,
    pre_save,
)
from tests.conftest import require_service

T = TypeVar("T")

#: Where the PostgreSQL tests connect (a database per test run is made there).
POSTGRES_URL = os.environ.get(
    "ASIGNAL_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)


class Base(AsyncAttrs, DeclarativeBase):
    pass


post_tags = Table(
    "post_tags",
    Base.metadata,
    Column("post_id", ForeignKey("post.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", ForeignKey("tag.id", ondelete="CASCADE"), primary_key=True),
)

# Declared course-first on purpose: with back_populates on both sides, the forward
# side is the one whose foreign key comes first, so Course.students is forward.
enrollment = Table(
    "enrollment",
    Base.metadata,
    Column("course_id", ForeignKey("course.id"), primary_key=True),
    Column("student_id", ForeignKey("student.id"), primary_key=True),
)


class Author(Base):
    __tablename__ = "author"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    posts: Mapped[list[Post]] = relationship(
        back_populates="author", cascade="all, delete-orphan"
    )


class Post(Base):
    __tablename__ = "post"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(50))
    body: Mapped[str] = mapped_column(String(200), default="")
    author_id: Mapped[int | None] = mapped_column(ForeignKey("author.id"))
    author: Mapped[Author | None] = relationship(back_populates="posts")
    comments: Mapped[list[Comment]] = relationship(
        back_populates="post", cascade="all, delete-orphan"
    )
    # backref= makes Post.tags the forward side and Tag.posts the reverse one.
    tags: Mapped[list[Tag]] = relationship(secondary=post_tags, backref="posts")


class Comment(Base):
    __tablename__ = "comment"
    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str] = mapped_column(String(50))
    post_id: Mapped[int] = mapped_column(ForeignKey("post.id"))
    post: Mapped[Post] = relationship(back_populates="comments")


class Tag(Base):
    __tablename__ = "tag"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))


class Course(Base):
    __tablename__ = "course"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(50))
    students: Mapped[list[Student]] = relationship(
        secondary=enrollment, back_populates="courses"
    )


class Student(Base):
    __tablename__ = "student"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    courses: Mapped[list[Course]] = relationship(
        secondary=enrollment, back_populates="students"
    )


class Audit(Base):
    """Rows that receivers write themselves."""

    __tablename__ = "audit"
    id: Mapped[int] = mapped_column(primary_key=True)
    note: Mapped[str] = mapped_column(String(200))


MODEL_SIGNALS: dict[str, Signal] = {
    "pre_init": pre_init,
    "post_init": post_init,
    "pre_save": pre_save,
    "post_save": post_save,
    "pre_delete": pre_delete,
    "post_delete": post_delete,
    "m2m_changed": m2m_changed,
}


@dataclass
class Sent:
    signal: str
    sender: object
    kwargs: dict[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.kwargs[key]


@dataclass
class Journal:
    """Every model signal received, in order (a real receiver on each signal)."""

    sent: list[Sent] = field(default_factory=list[Sent])

    def of(self, signal: str, sender: object = None) -> list[Sent]:
        return [
            s
            for s in self.sent
            if s.signal == signal and (sender is None or s.sender is sender)
        ]

    def names(self, *, skip_init: bool = True) -> list[tuple[str, str]]:
        """``(signal, sender name)`` pairs, for asserting order."""
        return [
            (s.signal, getattr(s.sender, "__name__", None) or str(s.sender))
            for s in self.sent
            if not (skip_init and s.signal in ("pre_init", "post_init"))
        ]

    def clear(self) -> None:
        self.sent.clear()

    def connect(self, stack: ExitStack) -> None:
        for name, signal in MODEL_SIGNALS.items():

            def record(sender: object, _name: str = name, **kwargs: Any) -> None:
                kwargs.pop("signal")
                self.sent.append(Sent(_name, sender, kwargs))

            signal.connect(record, weak=False)
            stack.callback(signal.disconnect, record)


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, port)) == 0


def postgres_available() -> bool:
    parts = urlsplit(POSTGRES_URL)
    return _port_open(parts.hostname or "127.0.0.1", parts.port or 5432)


class PostgresDatabase:
    """A throwaway database on the PostgreSQL server, dropped at the end."""

    def __init__(self) -> None:
        self.name = f"asignal_test_{uuid.uuid4().hex[:12]}"
        self._admin = create_engine(
            POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1),
            isolation_level="AUTOCOMMIT",
        )
        with self._admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{self.name}"')

    def url(self, driver: str) -> str:
        base = POSTGRES_URL.rsplit("/", 1)[0]
        return (
            f"{base.replace('postgresql://', f'postgresql+{driver}://', 1)}/{self.name}"
        )

    def drop(self) -> None:
        with self._admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        self._admin.dispose()


class Database:
    """One database and the way a test talks to it (sync or async sessions)."""

    def __init__(self, kind: str, url: str) -> None:
        self.kind = kind
        self.is_async = kind in ("aiosqlite", "asyncpg")
        self.url = url
        self.engine: Engine | None = None
        self.async_engine: AsyncEngine | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        if self.is_async:
            self._loop = asyncio.new_event_loop()
            self.async_engine = create_async_engine(url)
        else:
            self.engine = create_engine(url)
        # Counting rows from anywhere, receivers included, on a connection of its
        # own: a sync driver for the same database.
        sync_url = url.replace("+aiosqlite", "").replace("+asyncpg", "+psycopg")
        self._checker = create_engine(sync_url)

    def create_schema(self) -> None:
        if self.async_engine is not None:

            async def create() -> None:
                assert self.async_engine is not None
                async with self.async_engine.begin() as conn:
                    await conn.run_sync(Base.metadata.drop_all)
                    await conn.run_sync(Base.metadata.create_all)

            self.await_(create())
        else:
            assert self.engine is not None
            Base.metadata.drop_all(self.engine)
            Base.metadata.create_all(self.engine)

    def await_(self, coroutine: Any) -> Any:
        assert self._loop is not None
        return self._loop.run_until_complete(coroutine)

    def run(self, scenario: Callable[[Session], T], **session_options: Any) -> T:
        """Run *scenario* with a new session: a ``Session``, or the sync session of
        an ``AsyncSession`` inside its greenlet."""
        if self.async_engine is not None:

            async def run_async() -> T:
                async with AsyncSession(
                    self.async_engine, expire_on_commit=False, **session_options
                ) as session:
                    return await session.run_sync(scenario)

            return self.await_(run_async())  # type: ignore[no-any-return]
        with Session(self.engine, expire_on_commit=False, **session_options) as session:
            return scenario(session)

    def count(self, table: Any) -> int:
        """Committed rows in *table*, counted on a connection of its own."""
        with self._checker.connect() as conn:
            return conn.scalar(select(func.count()).select_from(table)) or 0

    def close(self) -> None:
        self._checker.dispose()
        if self.async_engine is not None:
            self.await_(self.async_engine.dispose())
            assert self._loop is not None
            self._loop.close()
        elif self.engine is not None:
            self.engine.dispose()


def make_database(
    kind: str, tmp: str, postgres: PostgresDatabase | None = None
) -> Database:
    if kind == "sqlite":
        url = f"sqlite:///{tmp}/sync.db"
    elif kind == "aiosqlite":
        url = f"sqlite+aiosqlite:///{tmp}/async.db"
    else:
        assert postgres is not None
        url = postgres.url(kind)
    database = Database(kind, url)
    database.create_schema()
    return database


# -- fixtures (for every test in this folder) ------------------------------------------

SYNC_KINDS = ["sqlite", "psycopg"]
ASYNC_KINDS = ["aiosqlite", "asyncpg"]
ALL_KINDS = SYNC_KINDS + ASYNC_KINDS


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresDatabase | None]:
    """A database of our own on the PostgreSQL server, or None if it is not up."""
    if not postgres_available():
        yield None
        return
    database = PostgresDatabase()
    try:
        yield database
    finally:
        database.drop()


def open_database(
    kind: str, tmp_path: Any, postgres: PostgresDatabase | None
) -> Iterator[Database]:
    if kind in ("psycopg", "asyncpg") and postgres is None:
        require_service(f"PostgreSQL is not reachable at {POSTGRES_URL}")
    database = make_database(kind, str(tmp_path), postgres)
    try:
        yield database
    finally:
        database.close()


@pytest.fixture(params=ALL_KINDS)
def db(
    request: pytest.FixtureRequest, tmp_path: Any, postgres: PostgresDatabase | None
) -> Iterator[Database]:
    """Each database in turn, sync and async."""
    yield from open_database(request.param, tmp_path, postgres)


@pytest.fixture
def installed() -> Iterator[None]:
    asignal.sqlalchemy.install(Base)
    try:
        yield
    finally:
        asignal.sqlalchemy.uninstall(Base)


@pytest.fixture
def journal(installed: None) -> Iterator[Journal]:
    with ExitStack() as stack:
        journal = Journal()
        journal.connect(stack)
        yield journal
