"""Async receivers under ``AsyncSession``, and async receivers with a plain ``Session``.

On asyncio: SQLAlchemy's ``AsyncSession`` and its drivers (aiosqlite, asyncpg) run
on asyncio, not trio (a test that needs no database runs on trio as well). The
bridge itself needs no event loop; under a sync ``Session`` it follows
``Signal.send()``'s rules, tested at the end.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any

import anyio
import pytest
from sqlalchemy import create_engine, func, insert, select
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    AsyncSessionTransaction,
    create_async_engine,
)
from sqlalchemy.orm import Session

import asignal.sqlalchemy
from asignal.signals import post_init, post_save, pre_init, pre_save
from asignal.testing import connected_to
from tests.conftest import require_service
from tests.sqlalchemy.conftest import (
    ASYNC_KINDS,
    Audit,
    Comment,
    Post,
    PostgresDatabase,
    make_database,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=ASYNC_KINDS)
def database_url(
    request: pytest.FixtureRequest, tmp_path: Any, postgres: PostgresDatabase | None
) -> Iterator[str]:
    if request.param == "asyncpg" and postgres is None:
        require_service("PostgreSQL is not reachable")
    database = make_database(request.param, str(tmp_path), postgres)
    try:
        yield database.url
    finally:
        database.close()


@pytest.fixture
async def engine(database_url: str, installed: None) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(database_url)
    try:
        yield engine
    finally:
        await engine.dispose()


class Refused(Exception):
    pass


async def test_async_receivers_are_awaited_in_the_flushing_task_in_call_order(
    engine: AsyncEngine,
) -> None:
    calls: list[tuple[str, object]] = []
    flushing_task = asyncio.current_task()

    async def slow(sender: type, **kwargs: Any) -> None:
        calls.append(("slow start", asyncio.current_task()))
        await anyio.sleep(0.01)
        calls.append(("slow end", None))

    def sync(sender: type, **kwargs: Any) -> None:
        calls.append(("sync", None))

    async def fast(sender: type, **kwargs: Any) -> None:
        calls.append(("fast", asyncio.current_task()))

    with (
        connected_to(slow, pre_save, sender=Post),
        connected_to(sync, pre_save, sender=Post),
        connected_to(fast, pre_save, sender=Post),
    ):
        async with AsyncSession(engine) as session:
            session.add(Post(title="p"))
            await session.commit()
    assert [name for name, _ in calls] == ["slow start", "slow end", "sync", "fast"]
    assert {task for _, task in calls if task is not None} == {flushing_task}


async def test_an_async_pre_save_that_raises_rolls_the_flush_back(
    engine: AsyncEngine,
) -> None:
    async def refuse(sender: type, instance: Post, **kwargs: Any) -> None:
        await anyio.sleep(0)
        raise Refused(instance.title)

    async with AsyncSession(engine) as session:
        session.add(Audit(note="same transaction"))
        await session.flush()
        with connected_to(refuse, pre_save, sender=Post):
            session.add(Post(title="refused"))
            with pytest.raises(Refused, match="refused"):
                await session.commit()
        await session.rollback()
        assert await session.scalar(select(func.count()).select_from(Audit)) == 0


async def test_async_post_save_receivers_write_through_the_async_session(
    engine: AsyncEngine,
) -> None:
    async def audit(
        sender: type, instance: Post, created: bool, session: AsyncSession, **kw: Any
    ) -> None:
        assert isinstance(session, AsyncSession)
        # Both ways of writing in the same transaction work: SQL now...
        await session.execute(insert(Audit).values(note=f"sql {instance.title}"))
        # ...or an object flushed by the commit's next flush.
        session.add(Audit(note=f"orm {instance.title}"))

    with connected_to(audit, post_save, sender=Post):
        async with AsyncSession(engine) as session:
            session.add(Post(title="p"))
            await session.commit()
            notes = (await session.scalars(select(Audit.note))).all()
    assert sorted(notes) == ["orm p", "sql p"]


async def test_the_connection_receivers_get_is_in_the_flushs_transaction(
    engine: AsyncEngine,
) -> None:
    """``connection=`` is an ``AsyncConnection`` in the flush's transaction: what a
    receiver writes through it is rolled back with the session (and, from SQLAlchemy
    2.1.7, it is the object ``await session.connection()`` returns)."""
    given: list[AsyncConnection] = []

    async def write(sender: type, connection: AsyncConnection, **kw: Any) -> None:
        await connection.execute(insert(Audit).values(note="through connection"))
        given.append(connection)

    with connected_to(write, post_save, sender=Post):
        async with AsyncSession(engine) as session:
            session.add(Post(title="p"))
            await session.flush()
            assert len(given) == 1
            assert isinstance(given[0], AsyncConnection)
            if hasattr(AsyncSessionTransaction, "connections"):
                assert given[0] is await session.connection()
            assert await session.scalar(select(func.count()).select_from(Audit)) == 1
            await session.rollback()
            assert await session.scalar(select(func.count()).select_from(Audit)) == 0


async def test_async_receivers_load_relationships_with_awaitable_attrs(
    engine: AsyncEngine,
) -> None:
    seen: list[object] = []

    async def inspect_post(sender: type, instance: Post, **kwargs: Any) -> None:
        # instance.comments would be a lazy load, IO outside SQLAlchemy's greenlet,
        # and raise MissingGreenlet (the README says so); this is the way.
        seen.append(len(await instance.awaitable_attrs.comments))

    async with AsyncSession(engine) as session:
        session.add(Post(title="p", comments=[Comment(text="c")]))
        await session.commit()
    async with AsyncSession(engine) as session:
        post = (await session.scalars(select(Post))).one()  # comments not loaded
        with connected_to(inspect_post, post_save, sender=Post):
            post.title = "changed"
            await session.commit()
    assert seen == [1]


async def test_on_commit_awaits_async_receivers_after_the_commit(
    engine: AsyncEngine, database_url: str
) -> None:
    committed: list[int] = []

    async def after_commit(sender: type, session: AsyncSession, **kwargs: Any) -> None:
        # The committing session cannot run SQL now; a new one can.
        async with AsyncSession(engine) as other:
            count = await other.scalar(select(func.count()).select_from(Post))
        committed.append(count or 0)

    with connected_to(after_commit, post_save, sender=Post):
        async with AsyncSession(
            engine, info={asignal.sqlalchemy.POST_DELIVERY_KEY: "on_commit"}
        ) as session:
            session.add(Post(title="p"))
            await session.flush()
            assert committed == []
            await session.commit()
    assert committed == [1]


async def test_an_async_on_commit_receiver_that_raises_leaves_the_session_usable(
    engine: AsyncEngine,
) -> None:
    """An async receiver failing in on_commit delivery: ``await commit()`` raises
    its exception, and the AsyncSession goes on as after any commit."""

    async def refuse(sender: type, instance: Post, **kwargs: Any) -> None:
        await anyio.sleep(0)
        if instance.title == "refused":
            raise Refused(instance.title)

    with connected_to(refuse, post_save, sender=Post):
        async with AsyncSession(
            engine, info={asignal.sqlalchemy.POST_DELIVERY_KEY: "on_commit"}
        ) as session:
            session.add(Post(title="refused"))
            with pytest.raises(Refused, match="refused"):
                await session.commit()
            session.add(Post(title="accepted"))
            await session.commit()
            await session.rollback()
            titles = (await session.scalars(select(Post.title))).all()
    assert sorted(titles) == ["accepted", "refused"]


async def test_a_sync_receiver_returning_a_coroutine_is_refused(
    engine: AsyncEngine,
) -> None:
    """Under AsyncSession, a receiver connected as sync that returns a coroutine
    makes the flush raise TypeError, as every send does, instead of being dropped."""
    ran: list[str] = []
    returned: list[Coroutine[Any, Any, None]] = []

    async def body() -> None:
        ran.append("body")

    def hides_async(sender: type, **kwargs: Any) -> Coroutine[Any, Any, None]:
        coroutine = body()
        returned.append(coroutine)
        return coroutine

    try:
        with connected_to(hides_async, pre_save, sender=Post):
            async with AsyncSession(engine) as session:
                session.add(Post(title="p"))
                with pytest.raises(TypeError, match="returned a coroutine"):
                    await session.commit()
    finally:
        for coroutine in returned:  # so that Python does not warn about them here
            coroutine.close()
    assert ran == []
    assert len(returned) == 1


async def test_robust_mode_logs_async_receiver_failures(
    engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    async def refuse(sender: type, **kwargs: Any) -> None:
        raise Refused("logged")

    from tests.sqlalchemy.conftest import Base

    asignal.sqlalchemy.install(Base, robust=True)  # replaces the options
    with (
        connected_to(refuse, pre_save, sender=Post),
        caplog.at_level(logging.ERROR, logger="asignal"),
    ):
        async with AsyncSession(engine) as session:
            session.add(Post(title="kept"))
            await session.commit()
            assert await session.scalar(select(func.count()).select_from(Post))
    assert "Refused: logged" in caplog.text


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_an_async_pre_init_receiver_says_why_it_cannot_run(
    installed: None,
) -> None:
    """A model constructed in async code sends pre_init from its (sync)
    constructor, outside any session: an async receiver gets a RuntimeError that
    says so and what to do, and the sync receivers still run."""
    ran: list[str] = []

    async def audit_init(sender: type, **kwargs: Any) -> None:
        ran.append("async")

    def count_init(sender: type, **kwargs: Any) -> None:
        ran.append("sync")

    with (
        connected_to(count_init, pre_init, sender=Post),
        connected_to(audit_init, pre_init, sender=Post),
        pytest.raises(RuntimeError) as raised,
    ):
        Post(title="p")
    message = str(raised.value)
    assert "audit_init" in message
    assert "Post" in message
    assert "constructor" in message
    assert "sync receiver" in message
    assert "init_signals=False" in message
    assert ran == ["sync"]


async def test_an_async_pre_init_receiver_runs_for_objects_made_in_run_sync(
    engine: AsyncEngine,
) -> None:
    """What the error advises works: a model constructed inside
    ``AsyncSession.run_sync`` awaits async pre_init receivers."""
    ran: list[str] = []

    async def audit_init(sender: type, **kwargs: Any) -> None:
        await anyio.sleep(0)
        ran.append("async")

    def make_post(session: Session) -> None:
        session.add(Post(title="made in run_sync"))

    with connected_to(audit_init, pre_init, sender=Post):
        async with AsyncSession(engine) as session:
            await session.run_sync(make_post)
            await session.commit()
    assert ran == ["async"]


async def test_async_post_init_receivers_are_awaited_when_an_async_session_loads(
    engine: AsyncEngine,
) -> None:
    """post_init is sent while the AsyncSession loads rows, inside its greenlet, so
    async receivers are awaited there."""
    loaded: list[str] = []

    async def on_load(sender: type, instance: Post, **kwargs: Any) -> None:
        await anyio.sleep(0)
        loaded.append(instance.title)

    async with AsyncSession(engine) as session:
        session.add(Post(title="p"))
        await session.commit()
    with connected_to(on_load, post_init, sender=Post):
        async with AsyncSession(engine) as session:
            await session.scalars(select(Post))
    assert loaded == ["p"]


# -- a plain Session with async receivers ----------------------------------------------


@pytest.fixture
def sync_engine(tmp_path: Any, installed: None) -> Iterator[Any]:
    from tests.sqlalchemy.conftest import Base

    engine = create_engine(f"sqlite:///{tmp_path}/plain.db")
    Base.metadata.create_all(engine)
    try:
        yield engine
    finally:
        engine.dispose()


async def test_a_sync_session_on_the_loop_thread_refuses_async_receivers(
    sync_engine: Any,
) -> None:
    async def on_save(sender: type, **kwargs: Any) -> None:
        pass

    with connected_to(on_save, pre_save, sender=Post), Session(sync_engine) as session:
        session.add(Post(title="p"))
        with pytest.raises(RuntimeError, match="asend"):
            session.commit()


async def test_a_sync_session_in_a_worker_thread_runs_async_receivers(
    sync_engine: Any,
) -> None:
    loop_thread_tasks: list[bool] = []

    async def on_save(sender: type, **kwargs: Any) -> None:
        await anyio.sleep(0)
        loop_thread_tasks.append(True)

    def write() -> None:
        with Session(sync_engine) as session:
            session.add(Post(title="p"))
            session.commit()

    with connected_to(on_save, post_save, sender=Post):
        await anyio.to_thread.run_sync(write)
    assert loop_thread_tasks == [True]
