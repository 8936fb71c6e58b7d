"""A FastAPI app whose SQLAlchemy models send Django-style model signals.

- ``asignal.sqlalchemy.install(Base)`` makes every model send ``pre_save``,
  ``post_save``, ``pre_delete``, ``post_delete`` and ``m2m_changed``.
- A ``post_save`` receiver writes an audit row in the same transaction as the change
  (it is rolled back with it), and another drops the article from a read cache.
- The receivers are ``async def``: under ``AsyncSession`` asignal awaits them in the
  request's task, inside the flush.

Needs SQLAlchemy, aiosqlite, FastAPI, uvicorn and httpx (asyncpg for
PostgreSQL). Run it::

    pip install -e . --group examples              # what the examples need
    python examples/sqlalchemy_models.py           # http://127.0.0.1:8000
    DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1/test python examples/...
    curl -X POST 'http://127.0.0.1:8000/articles?title=Hello'
    curl -X PUT 'http://127.0.0.1:8000/articles/1?title=Hi'
    curl http://127.0.0.1:8000/audit

Self-check (what ``nox -s examples`` runs)::

    python examples/sqlalchemy_models.py --check

serves the app with a real uvicorn on a free port and a fresh SQLite database,
creates and edits an article over HTTP with httpx, and checks the audit trail and
that the cache never serves a stale title; it exits 0, or 1 on any failure.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI, HTTPException
from sqlalchemy import String, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import asignal.sqlalchemy
from asignal import receiver
from asignal.signals import post_save

# -- models ----------------------------------------------------------------------------


class Base(DeclarativeBase):
    pass


class Article(Base):
    __tablename__ = "article"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))


class AuditEntry(Base):
    __tablename__ = "audit_entry"
    id: Mapped[int] = mapped_column(primary_key=True)
    note: Mapped[str] = mapped_column(String(200))


# -- receivers -------------------------------------------------------------------------

#: article id -> title, filled by GET and emptied by the receiver below.
cache: dict[int, str] = {}


@receiver(post_save, sender=Article)
async def audit_change(
    sender: type[Article],
    instance: Article,
    created: bool,
    update_fields: frozenset[str] | None,
    session: AsyncSession,
    **kwargs: Any,
) -> None:
    """Runs inside the flush: the audit row joins the same transaction, so a
    rolled-back change leaves no audit row behind."""
    if created:
        note = f"created article {instance.id}"
    else:
        note = f"changed {', '.join(sorted(update_fields or ()))} of {instance.id}"
    session.add(AuditEntry(note=note))


@receiver(post_save, sender=Article)
async def invalidate_cache(
    sender: type[Article], instance: Article, **kwargs: Any
) -> None:
    # Inside the flush, before the commit: a reader in between could cache the old
    # row again. Where that matters, open the session with
    # info={asignal.sqlalchemy.POST_DELIVERY_KEY: "on_commit"}.
    cache.pop(instance.id, None)


# -- the app ---------------------------------------------------------------------------

DATABASE_URL = os.environ.get("DATABASE_URL") or (
    f"sqlite+aiosqlite:///{tempfile.mkdtemp(prefix='asignal-example-')}/app.db"
)
engine = create_async_engine(DATABASE_URL)
Session = async_sessionmaker(engine, expire_on_commit=False)
asignal.sqlalchemy.install(Base, binds={"default": engine})


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    yield
    await engine.dispose()


app = FastAPI(title="asignal + SQLAlchemy", lifespan=lifespan)


@app.post("/articles")
async def create_article(title: str) -> dict[str, Any]:
    async with Session() as session:
        article = Article(title=title)
        session.add(article)
        await session.commit()
        return {"id": article.id, "title": article.title}


@app.put("/articles/{article_id}")
async def rename_article(article_id: int, title: str) -> dict[str, Any]:
    async with Session() as session:
        article = await session.get(Article, article_id)
        if article is None:
            raise HTTPException(404, "no such article")
        article.title = title
        await session.commit()
        return {"id": article.id, "title": article.title}


@app.get("/articles/{article_id}")
async def read_article(article_id: int) -> dict[str, Any]:
    if article_id not in cache:
        async with Session() as session:
            article = await session.get(Article, article_id)
            if article is None:
                raise HTTPException(404, "no such article")
            cache[article_id] = article.title
    return {"id": article_id, "title": cache[article_id]}


@app.get("/audit")
async def read_audit() -> list[str]:
    async with Session() as session:
        return list(
            await session.scalars(select(AuditEntry.note).order_by(AuditEntry.id))
        )


# -- running and checking --------------------------------------------------------------


def check() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, lifespan="on", log_level="warning"))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert thread.is_alive(), "uvicorn exited during startup"
            assert time.monotonic() < deadline, "uvicorn did not start in 10 s"
            time.sleep(0.01)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            created = client.post("/articles", params={"title": "Hello"}).json()
            assert created == {"id": 1, "title": "Hello"}, created
            assert client.get("/articles/1").json()["title"] == "Hello"  # now cached
            renamed = client.put("/articles/1", params={"title": "Hi"})
            assert renamed.status_code == 200, renamed.text
            assert client.get("/articles/1").json()["title"] == "Hi", "stale cache"
            audit = client.get("/audit").json()
            assert audit == ["created article 1", "changed title of 1"], audit
            assert client.put("/articles/9", params={"title": "x"}).status_code == 404
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
    assert not thread.is_alive(), "uvicorn did not shut down in 10 s"
    print("sqlalchemy_models --check: OK")


def main(argv: list[str]) -> int:
    if "--check" in argv:
        check()
        return 0
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ.get("PORT", "8000")))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
