"""Model signals from SQLAlchemy flushes, on SQLite and PostgreSQL, sync and async.

Every test here runs on the four databases of ``conftest.py`` (the async ones
through ``AsyncSession.run_sync``, so inside SQLAlchemy's greenlet) with sync
receivers; ``test_async.py`` covers async receivers.
"""

from __future__ import annotations

import logging
from contextlib import ExitStack
from typing import Any

import pytest
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import Session

import asignal.sqlalchemy
from asignal.signals import m2m_changed, post_save, pre_delete, pre_save
from asignal.testing import connected_to
from tests.sqlalchemy.conftest import (
    Audit,
    Author,
    Base,
    Comment,
    Course,
    Database,
    Journal,
    Post,
    Student,
    Tag,
    enrollment,
    post_tags,
)


def _add_post(session: Session, **fields: Any) -> Post:
    post = Post(title="hello", **fields)
    session.add(post)
    session.commit()
    return post


# -- save ------------------------------------------------------------------------------


def test_insert_sends_pre_save_then_post_save_with_djangos_kwargs(
    db: Database, journal: Journal
) -> None:
    post = db.run(_add_post)
    assert journal.names() == [("pre_save", "Post"), ("post_save", "Post")]
    pre, post_sent = journal.of("pre_save")[0], journal.of("post_save")[0]
    assert pre.sender is Post
    assert pre["instance"] is post
    assert pre["raw"] is False
    assert pre["update_fields"] is None
    assert isinstance(pre["using"], str)
    assert "password" not in pre["using"]
    assert post_sent["created"] is True
    assert post_sent["update_fields"] is None
    if db.is_async:
        assert isinstance(pre["session"], AsyncSession)
        assert isinstance(pre["connection"], AsyncConnection)
    else:
        assert isinstance(pre["session"], Session)
        assert pre["connection"] is not None


def test_update_sends_the_changed_column_names(db: Database, journal: Journal) -> None:
    def scenario(session: Session) -> None:
        post = _add_post(session)
        journal.clear()
        post.title = "changed"
        post.body = ""  # the value it already had: not a change
        session.commit()

    db.run(scenario)
    assert journal.names() == [("pre_save", "Post"), ("post_save", "Post")]
    assert journal.of("pre_save")[0]["update_fields"] == frozenset({"title"})
    assert journal.of("post_save")[0]["created"] is False
    assert journal.of("post_save")[0]["update_fields"] == frozenset({"title"})


def test_a_foreign_key_set_through_a_relationship_is_a_changed_field(
    db: Database, journal: Journal
) -> None:
    def scenario(session: Session) -> None:
        post = _add_post(session)
        journal.clear()
        post.author = Author(name="ann")
        session.commit()

    db.run(scenario)
    assert journal.names() == [
        ("pre_save", "Author"),
        ("pre_save", "Post"),
        ("post_save", "Author"),
        ("post_save", "Post"),
    ]
    assert journal.of("pre_save", Post)[0]["update_fields"] == frozenset({"author_id"})


def test_an_unchanged_object_sends_nothing(db: Database, journal: Journal) -> None:
    def scenario(session: Session) -> None:
        post = _add_post(session)
        journal.clear()
        post.title = post.title
        session.commit()

    db.run(scenario)
    assert journal.names() == []


def test_pre_save_receivers_can_change_the_row_before_it_is_written(
    db: Database, journal: Journal
) -> None:
    def slugify(sender: type, instance: Post, **kwargs: Any) -> None:
        instance.body = f"about {instance.title}"

    def scenario(session: Session) -> str:
        _add_post(session)
        session.expunge_all()
        return session.scalars(select(Post.body)).one()

    with connected_to(slugify, pre_save, sender=Post):
        assert db.run(scenario) == "about hello"


# -- delete ----------------------------------------------------------------------------


def test_delete_sends_pre_delete_then_post_delete(
    db: Database, journal: Journal
) -> None:
    def scenario(session: Session) -> Post:
        post = _add_post(session)
        journal.clear()
        session.delete(post)
        session.commit()
        return post

    post = db.run(scenario)
    assert journal.names() == [("pre_delete", "Post"), ("post_delete", "Post")]
    for sent in journal.of("pre_delete") + journal.of("post_delete"):
        assert sent["instance"] is post
        assert sent["origin"] is post
        assert isinstance(sent["using"], str)


def test_cascade_delete_names_the_origin(db: Database, journal: Journal) -> None:
    def scenario(session: Session) -> tuple[Author, Post, Comment]:
        author = Author(name="ann")
        post = Post(title="p", author=author)
        comment = Comment(text="c", post=post)
        session.add(author)
        session.commit()
        journal.clear()
        session.delete(author)
        session.commit()
        return author, post, comment

    author, post, comment = db.run(scenario)
    deleted = {s["instance"]: s["origin"] for s in journal.of("pre_delete")}
    assert deleted == {author: author, post: author, comment: author}
    assert {s["instance"]: s["origin"] for s in journal.of("post_delete")} == deleted
    # Children's rows go before their parent's.
    order = [s.sender for s in journal.of("post_delete")]
    assert order.index(Comment) < order.index(Post) < order.index(Author)
    assert db.count(Comment) == 0


def test_delete_orphan_is_its_own_origin(db: Database, journal: Journal) -> None:
    def scenario(session: Session) -> Comment:
        post = Post(title="p", comments=[Comment(text="c")])
        session.add(post)
        session.commit()
        journal.clear()
        comment = post.comments.pop()
        session.commit()
        return comment

    comment = db.run(scenario)
    [sent] = journal.of("post_delete")
    assert sent["instance"] is comment
    assert sent["origin"] is comment


# -- many-to-many ----------------------------------------------------------------------


def _post_and_tags(session: Session) -> tuple[Post, Tag, Tag]:
    post, one, two = Post(title="p"), Tag(name="one"), Tag(name="two")
    session.add_all([post, one, two])
    session.commit()
    return post, one, two


def _m2m(journal: Journal) -> list[tuple[str, object, bool, set[Any]]]:
    return [
        (s["action"], s["instance"], s["reverse"], s["pk_set"])
        for s in journal.of("m2m_changed")
    ]


def test_m2m_add_from_the_forward_side(db: Database, journal: Journal) -> None:
    def scenario(session: Session) -> tuple[Post, Tag, Tag]:
        post, one, two = _post_and_tags(session)
        journal.clear()
        post.tags.extend([one, two])
        session.commit()
        return post, one, two

    post, one, two = db.run(scenario)
    assert _m2m(journal) == [
        ("pre_add", post, False, {one.id, two.id}),
        ("post_add", post, False, {one.id, two.id}),
    ]
    sent = journal.of("m2m_changed")[0]
    assert sent.sender is post_tags
    assert sent["model"] is Tag
    assert isinstance(sent["using"], str)
    assert db.count(post_tags) == 2


def test_m2m_add_from_the_reverse_side(db: Database, journal: Journal) -> None:
    def scenario(session: Session) -> tuple[Post, Tag]:
        post, one, _ = _post_and_tags(session)
        journal.clear()
        one.posts.append(post)  # type: ignore[attr-defined]
        session.commit()
        return post, one

    post, one = db.run(scenario)
    assert _m2m(journal) == [
        ("pre_add", one, True, {post.id}),
        ("post_add", one, True, {post.id}),
    ]
    assert journal.of("m2m_changed")[0]["model"] is Post


def test_m2m_remove_and_clear_from_both_sides(db: Database, journal: Journal) -> None:
    def scenario(session: Session) -> tuple[Post, Tag, Tag]:
        post, one, two = _post_and_tags(session)
        post.tags.extend([one, two])
        session.commit()
        journal.clear()
        one.posts.remove(post)  # type: ignore[attr-defined]
        session.commit()
        post.tags.clear()
        session.commit()
        return post, one, two

    post, one, two = db.run(scenario)
    assert _m2m(journal) == [
        ("pre_remove", one, True, {post.id}),
        ("post_remove", one, True, {post.id}),
        # clear() cannot be told from removing each: reported as a removal.
        ("pre_remove", post, False, {two.id}),
        ("post_remove", post, False, {two.id}),
    ]
    assert db.count(post_tags) == 0


def test_m2m_changes_of_new_objects_carry_their_new_keys(
    db: Database, journal: Journal
) -> None:
    def scenario(session: Session) -> tuple[Post, Tag]:
        tag = Tag(name="new")
        post = Post(title="new", tags=[tag])
        session.add(post)
        session.commit()
        return post, tag

    post, tag = db.run(scenario)
    assert journal.names() == [
        ("pre_save", "Post"),
        ("pre_save", "Tag"),
        ("m2m_changed", "post_tags"),
        ("post_save", "Post"),
        ("post_save", "Tag"),
        ("m2m_changed", "post_tags"),
    ] or journal.names() == [
        ("pre_save", "Tag"),
        ("pre_save", "Post"),
        ("m2m_changed", "post_tags"),
        ("post_save", "Tag"),
        ("post_save", "Post"),
        ("m2m_changed", "post_tags"),
    ]
    assert _m2m(journal) == [
        ("pre_add", post, False, {tag.id}),
        ("post_add", post, False, {tag.id}),
    ]


def test_m2m_reports_the_net_change_since_the_last_flush(
    db: Database, journal: Journal
) -> None:
    def scenario(session: Session) -> None:
        post, one, two = _post_and_tags(session)
        post.tags.append(one)
        session.commit()
        journal.clear()
        post.tags.append(two)
        post.tags.remove(two)  # undone before the flush
        post.tags.remove(one)
        post.tags.append(one)  # likewise
        session.commit()

    db.run(scenario)
    assert journal.of("m2m_changed") == []


def test_m2m_between_back_populates_sides_is_forward_by_column_order(
    db: Database, journal: Journal
) -> None:
    def scenario(session: Session) -> tuple[Course, Student]:
        course, student = Course(title="c"), Student(name="s")
        session.add_all([course, student])
        session.commit()
        journal.clear()
        student.courses.append(course)
        session.commit()
        course.students.remove(student)
        session.commit()
        return course, student

    course, student = db.run(scenario)
    assert _m2m(journal) == [
        ("pre_add", student, True, {course.id}),
        ("post_add", student, True, {course.id}),
        ("pre_remove", course, False, {student.id}),
        ("post_remove", course, False, {student.id}),
    ]
    assert journal.of("m2m_changed")[0].sender is enrollment
    assert journal.of("m2m_changed")[0]["model"] is Course
    assert journal.of("m2m_changed")[2]["model"] is Student


def test_pre_add_runs_before_the_rows_exist_and_post_add_after(
    db: Database, journal: Journal
) -> None:
    seen: dict[str, int] = {}

    def count_rows(sender: object, action: str, session: Any, **kwargs: Any) -> None:
        sync = session.sync_session if isinstance(session, AsyncSession) else session
        seen[action] = len(sync.execute(select(post_tags)).all())

    def scenario(session: Session) -> None:
        post, one, _ = _post_and_tags(session)
        post.tags.append(one)
        session.commit()

    with connected_to(count_rows, m2m_changed):
        db.run(scenario)
    assert seen == {"pre_add": 0, "post_add": 1}


# -- failures and transactions ---------------------------------------------------------


class Refused(Exception):
    pass


def test_a_pre_save_receiver_that_raises_aborts_the_flush(
    db: Database, journal: Journal
) -> None:
    def refuse(sender: type, instance: Post, **kwargs: Any) -> None:
        if instance.title == "bad":
            raise Refused(instance.title)

    def scenario(session: Session) -> None:
        session.add(Audit(note="same transaction"))
        session.flush()
        session.add(Post(title="bad"))
        with pytest.raises(Refused, match="bad"):
            session.commit()
        session.rollback()

    with connected_to(refuse, pre_save, sender=Post):
        db.run(scenario)
    assert journal.of("post_save", Post) == []
    assert db.count(Post) == 0
    assert db.count(Audit) == 0  # the whole transaction was rolled back


def test_robust_mode_logs_a_failing_receiver_and_writes_the_row(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    import asignal.sqlalchemy

    def refuse(sender: type, **kwargs: Any) -> None:
        raise Refused("logged, not raised")

    asignal.sqlalchemy.install(Post, robust=True)
    try:
        with (
            connected_to(refuse, pre_save, sender=Post),
            caplog.at_level(logging.ERROR, logger="asignal"),
        ):
            db.run(_add_post)
    finally:
        asignal.sqlalchemy.uninstall(Post)
    assert db.count(Post) == 1
    assert "logged, not raised" in caplog.text


def test_post_save_in_a_rolled_back_transaction_is_still_sent_after_the_flush(
    db: Database, journal: Journal
) -> None:
    def scenario(session: Session) -> None:
        session.add(Post(title="gone"))
        session.flush()
        session.rollback()

    db.run(scenario)
    # The documented consequence of the default mode: the receiver saw a save that
    # was rolled back later. on_commit avoids it (next tests).
    assert journal.names() == [("pre_save", "Post"), ("post_save", "Post")]
    assert db.count(Post) == 0


@pytest.mark.parametrize("commit", [True, False])
def test_on_commit_delivers_after_the_commit_or_not_at_all(
    db: Database, journal: Journal, commit: bool
) -> None:
    seen_rows: list[int] = []

    def count_committed(sender: type, **kwargs: Any) -> None:
        seen_rows.append(db.count(Post))  # a connection of its own: committed rows

    def scenario(session: Session) -> None:
        session.add(Post(title="later"))
        session.flush()
        assert journal.of("post_save") == []
        if commit:
            session.commit()
        else:
            session.rollback()

    with connected_to(count_committed, post_save, sender=Post):
        db.run(scenario, info={"asignal.post_delivery": "on_commit"})
    if commit:
        assert journal.names() == [("pre_save", "Post"), ("post_save", "Post")]
        assert journal.of("post_save")[0]["connection"] is None
        assert seen_rows == [1]
    else:
        assert journal.names() == [("pre_save", "Post")]
        assert seen_rows == []


def test_on_commit_follows_savepoints(db: Database, journal: Journal) -> None:
    def scenario(session: Session) -> None:
        session.add(Post(title="outer"))
        kept = session.begin_nested()
        session.add(Post(title="released"))
        kept.commit()
        dropped = session.begin_nested()
        session.add(Post(title="rolled back"))
        session.flush()
        dropped.rollback()
        session.commit()

    db.run(scenario, info={"asignal.post_delivery": "on_commit"})
    titles = sorted(s["instance"].title for s in journal.of("post_save"))
    assert titles == ["outer", "released"]
    assert db.count(Post) == 2


def test_an_on_commit_receiver_that_raises_leaves_the_session_usable(
    db: Database, journal: Journal, caplog: pytest.LogCaptureFixture
) -> None:
    """A receiver failing in on_commit delivery: commit() raises its exception once
    the data is committed, the session goes on as after any commit, and each send
    that was not made is logged at ERROR."""
    rows: list[Post] = []

    def refuse_the_first(sender: type, instance: Post, **kwargs: Any) -> None:
        if instance is rows[0]:
            raise Refused("first row")

    def scenario(session: Session) -> None:
        rows.extend(Post(title=title) for title in ("one", "two", "three"))
        session.add_all(rows)
        with pytest.raises(Refused, match="first row"):
            session.commit()
        session.add(Post(title="four"))
        session.commit()
        session.rollback()

    with (
        connected_to(refuse_the_first, post_save, sender=Post),
        caplog.at_level(logging.ERROR, logger="asignal"),
    ):
        db.run(scenario, info={"asignal.post_delivery": "on_commit"})
    assert db.count(Post) == 4
    sent = [s["instance"].title for s in journal.of("post_save")]
    assert sent == ["one", "four"]
    not_sent = [r for r in caplog.records if "not sent" in r.getMessage()]
    assert [r.levelno for r in not_sent] == [logging.ERROR] * 2
    for record, row in zip(not_sent, rows[1:], strict=True):
        assert "post_save" in record.getMessage()
        assert repr(row) in record.getMessage()
        assert "Refused: first row" in record.getMessage()


def test_robust_on_commit_delivery_sends_every_row(
    db: Database, journal: Journal, caplog: pytest.LogCaptureFixture
) -> None:
    """With install(robust=True), a receiver failing in on_commit delivery is
    logged and every other row's post_save is still sent."""

    def refuse_one(sender: type, instance: Post, **kwargs: Any) -> None:
        if instance.title == "one":
            raise Refused("logged")

    def scenario(session: Session) -> None:
        session.add_all([Post(title="one"), Post(title="two")])
        session.commit()
        session.add(Post(title="three"))
        session.commit()

    # Replaces the options the journal fixture installed Base with.
    asignal.sqlalchemy.install(Base, robust=True, post_delivery="on_commit")
    with (
        connected_to(refuse_one, post_save, sender=Post),
        caplog.at_level(logging.ERROR, logger="asignal"),
    ):
        db.run(scenario)
    assert [s["instance"].title for s in journal.of("post_save")] == [
        "one",
        "two",
        "three",
    ]
    assert "Refused: logged" in caplog.text


def test_flush_mode_sends_post_save_right_after_each_row(
    db: Database, journal: Journal
) -> None:
    def scenario(session: Session) -> None:
        session.add(Author(name="a"))
        session.flush()
        session.add_all([Post(title="one"), Post(title="two")])
        session.commit()

    db.run(scenario, info={"asignal.post_delivery": "flush"})
    assert journal.names() == [
        ("pre_save", "Author"),
        ("post_save", "Author"),
        ("pre_save", "Post"),
        ("pre_save", "Post"),
        ("post_save", "Post"),
        ("post_save", "Post"),
    ]


def test_after_flush_orders_every_post_after_every_pre(
    db: Database, journal: Journal
) -> None:
    def scenario(session: Session) -> None:
        session.add_all([Author(name="a"), Post(title="one")])
        session.commit()

    db.run(scenario)
    names = [name for name, _ in journal.names()]
    assert names == ["pre_save", "pre_save", "post_save", "post_save"]


# -- receivers that use the database ---------------------------------------------------


def test_a_post_save_receiver_writes_in_the_same_transaction(
    db: Database, journal: Journal
) -> None:
    def audit(
        sender: type, instance: Post, created: bool, session: Any, **kw: Any
    ) -> None:
        session.add(
            Audit(note=f"{'created' if created else 'updated'} {instance.title}")
        )

    def scenario(session: Session) -> None:
        _add_post(session)
        session.add(Post(title="rolled back"))
        session.flush()
        session.rollback()

    with connected_to(audit, post_save, sender=Post):
        db.run(scenario)

    def notes(session: Session) -> list[str]:
        return list(session.scalars(select(Audit.note).order_by(Audit.id)))

    assert db.run(notes) == ["created hello"]
    # The audit row is a model too: its own save was signalled (the second one was
    # rolled back before it was flushed).
    assert [s.sender for s in journal.of("post_save")].count(Audit) == 1


def test_a_pre_delete_receiver_queries_through_the_connection(
    db: Database, journal: Journal
) -> None:
    counts: list[int] = []

    def count_comments(
        sender: type, instance: Post, connection: Any, **kw: Any
    ) -> None:
        sync = getattr(connection, "sync_connection", connection)
        query = select(Comment.id).where(Comment.post_id == instance.id)
        counts.append(len(sync.execute(query).all()))

    def scenario(session: Session) -> None:
        post = Post(title="p", comments=[Comment(text="1"), Comment(text="2")])
        session.add(post)
        session.commit()
        session.delete(post)
        session.commit()

    with connected_to(count_comments, pre_delete, sender=Post):
        db.run(scenario)
    # Comments are deleted first, as children: the post's pre_delete sees none.
    assert counts == [0]


def test_bulk_statements_send_no_per_instance_signals(
    db: Database, journal: Journal
) -> None:
    bulk: list[tuple[str, str, object, Any]] = []

    def on_bulk(sender: type, action: str, **kwargs: Any) -> None:
        name = kwargs["signal"].name.rsplit(".", 1)[1]
        bulk.append((name, action, sender, kwargs.get("rowcount")))

    def scenario(session: Session) -> None:
        session.execute(insert(Post), [{"title": "a"}, {"title": "b"}])
        session.execute(update(Post).values(title="c"))
        session.execute(delete(Post).where(Post.title == "c"))
        session.execute(select(Post))  # not a write: nothing
        session.commit()

    with (
        connected_to(on_bulk, asignal.sqlalchemy.pre_bulk),
        connected_to(on_bulk, asignal.sqlalchemy.post_bulk),
    ):
        db.run(scenario)
    assert journal.names() == []
    assert [(name, action, sender) for name, action, sender, _ in bulk] == [
        ("pre_bulk", "insert", Post),
        ("post_bulk", "insert", Post),
        ("pre_bulk", "update", Post),
        ("post_bulk", "update", Post),
        ("pre_bulk", "delete", Post),
        ("post_bulk", "delete", Post),
    ]
    assert [rowcount for name, _, _, rowcount in bulk[2:] if name == "post_bulk"] == [
        2,
        2,
    ]
    assert db.count(Post) == 0


def test_a_pre_bulk_receiver_can_refuse_the_statement(
    db: Database, journal: Journal
) -> None:
    def refuse(sender: type, action: str, **kwargs: Any) -> None:
        if action == "delete":
            raise Refused("no bulk deletes here")

    def scenario(session: Session) -> None:
        _add_post(session)
        with pytest.raises(Refused):
            session.execute(delete(Post))
        session.commit()

    with connected_to(refuse, asignal.sqlalchemy.pre_bulk):
        db.run(scenario)
    assert db.count(Post) == 1


def test_pre_init_and_post_init(db: Database, journal: Journal) -> None:
    def scenario(session: Session) -> Post:
        _add_post(session)
        session.expunge_all()
        return session.scalars(select(Post)).one()

    loaded = db.run(scenario)
    [pre_init] = journal.of("pre_init")
    assert pre_init.sender is Post
    assert pre_init["kwargs"] == {"title": "hello"}
    assert pre_init["args"] == ()
    [post_init] = journal.of("post_init")
    assert post_init["instance"] is loaded


def test_named_binds_become_using(db: Database) -> None:
    import asignal.sqlalchemy

    journal = Journal()
    asignal.sqlalchemy.install(Post, binds={"primary": db.async_engine or db.engine})
    try:
        with ExitStack() as stack:
            journal.connect(stack)
            db.run(_add_post)
    finally:
        asignal.sqlalchemy.uninstall(Post)
    assert {s["using"] for s in journal.of("post_save")} == {"primary"}
