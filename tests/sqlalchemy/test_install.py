"""``install()``/``uninstall()``: targets, idempotence, later classes, bad input."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import sqlmodel
from sqlalchemy import Column, ForeignKey, String, Table, create_engine
from sqlalchemy.engine import Engine
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    mapped_column,
    registry,
    relationship,
)

import asignal.sqlalchemy
from asignal.signals import m2m_changed, post_save
from asignal.testing import capture_signals, connected_to


@pytest.fixture
def engine() -> Iterator[Engine]:
    engine = create_engine("sqlite://")
    try:
        yield engine
    finally:
        engine.dispose()


def _saves(engine: Engine, *objects: object) -> int:
    """How many post_save sends a commit of *objects* makes."""
    with capture_signals(post_save) as recorder, Session(engine) as session:
        session.add_all(objects)
        session.commit()
    return len(recorder)


def test_install_is_idempotent_and_uninstall_undoes_it(engine: Engine) -> None:
    class Base(DeclarativeBase):
        pass

    class Item(Base):
        __tablename__ = "item"
        id: Mapped[int] = mapped_column(primary_key=True)

    Base.metadata.create_all(engine)
    assert not asignal.sqlalchemy.is_installed(Base)
    calls: list[object] = []

    def on_save(sender: type, **kwargs: Any) -> None:
        calls.append(sender)

    with connected_to(on_save, post_save):
        asignal.sqlalchemy.install(Base)
        asignal.sqlalchemy.install(Base)
        assert asignal.sqlalchemy.is_installed(Base)
        _saves(engine, Item())
        assert calls == [Item]  # once, not once per install
        asignal.sqlalchemy.uninstall(Base)
        asignal.sqlalchemy.uninstall(Base)  # a no-op
        _saves(engine, Item())
        assert calls == [Item]
    assert not asignal.sqlalchemy.is_installed(Base)


def test_classes_mapped_after_install_are_covered(engine: Engine) -> None:
    class Base(DeclarativeBase):
        pass

    asignal.sqlalchemy.install(Base)
    try:

        class Late(Base):
            __tablename__ = "late"
            id: Mapped[int] = mapped_column(primary_key=True)
            tags: Mapped[list[LateTag]] = relationship(
                secondary=Table(
                    "late_tags",
                    Base.metadata,
                    Column("late_id", ForeignKey("late.id"), primary_key=True),
                    Column("tag_id", ForeignKey("late_tag.id"), primary_key=True),
                )
            )

        class LateTag(Base):
            __tablename__ = "late_tag"
            id: Mapped[int] = mapped_column(primary_key=True)

        Base.metadata.create_all(engine)
        with capture_signals(m2m_changed) as recorder:
            assert _saves(engine, Late(tags=[LateTag()])) == 2
        assert [s.kwargs["action"] for s in recorder.sent()] == ["pre_add", "post_add"]
    finally:
        asignal.sqlalchemy.uninstall(Base)


def test_other_bases_are_left_alone(engine: Engine) -> None:
    class Mine(DeclarativeBase):
        pass

    class Theirs(DeclarativeBase):
        pass

    class A(Mine):
        __tablename__ = "a"
        id: Mapped[int] = mapped_column(primary_key=True)

    class B(Theirs):
        __tablename__ = "b"
        id: Mapped[int] = mapped_column(primary_key=True)

    Mine.metadata.create_all(engine)
    Theirs.metadata.create_all(engine)
    asignal.sqlalchemy.install(Mine)
    try:
        assert _saves(engine, A(), B()) == 1
    finally:
        asignal.sqlalchemy.uninstall(Mine)


def test_a_registry_can_be_installed(engine: Engine) -> None:
    reg = registry()

    @reg.mapped
    class Note:
        __tablename__ = "note"
        id: Mapped[int] = mapped_column(primary_key=True)
        text: Mapped[str] = mapped_column(String(20))

        def __init__(self, text: str) -> None:
            self.text = text

    reg.metadata.create_all(engine)
    asignal.sqlalchemy.install(reg)
    try:
        assert _saves(engine, Note(text="x")) == 1
    finally:
        asignal.sqlalchemy.uninstall(reg)


def test_sqlmodel_models_and_session(engine: Engine) -> None:
    class Hero(sqlmodel.SQLModel, table=True):
        __tablename__ = "asignal_hero"  # pyright: ignore[reportAssignmentType]
        id: int | None = sqlmodel.Field(default=None, primary_key=True)
        name: str

    Hero.metadata.create_all(engine, tables=[Hero.__table__])  # type: ignore[attr-defined]
    asignal.sqlalchemy.install(sqlmodel.SQLModel)
    try:
        with capture_signals(post_save) as recorder, sqlmodel.Session(engine) as s:
            s.add(Hero(name="ann"))
            s.commit()
        recorder.assert_sent(post_save, Hero, created=True)
    finally:
        asignal.sqlalchemy.uninstall(sqlmodel.SQLModel)


# -- bad input ------------------------------------------------------------------------


def test_install_refuses_what_is_not_a_base_or_registry() -> None:
    with pytest.raises(TypeError, match="declarative base class"):
        asignal.sqlalchemy.install(object())
    with pytest.raises(TypeError, match="declarative base class"):
        asignal.sqlalchemy.install(int)


def test_install_refuses_an_unknown_delivery_mode() -> None:
    with pytest.raises(ValueError, match="'after_flush', 'flush', 'on_commit'"):
        asignal.sqlalchemy.install(registry(), post_delivery="later")  # type: ignore[arg-type]


def test_install_refuses_binds_that_are_not_engines() -> None:
    with pytest.raises(TypeError, match=r"binds=\{'default': \.\.\.\}"):
        asignal.sqlalchemy.install(registry(), binds={"default": "sqlite://"})


def test_a_bad_per_session_mode_is_reported(engine: Engine) -> None:
    class Base(DeclarativeBase):
        pass

    class Thing(Base):
        __tablename__ = "thing"
        id: Mapped[int] = mapped_column(primary_key=True)

    Base.metadata.create_all(engine)
    asignal.sqlalchemy.install(Base)
    try:
        with (
            connected_to(lambda sender, **kw: None, post_save),
            Session(engine, info={"asignal.post_delivery": "never"}) as session,
        ):
            session.add(Thing())
            with pytest.raises(ValueError, match=r"session.info\['asignal"):
                session.commit()
    finally:
        asignal.sqlalchemy.uninstall(Base)


def test_a_bad_m2m_side_is_reported(engine: Engine) -> None:
    class Base(DeclarativeBase):
        pass

    table = Table(
        "x_y",
        Base.metadata,
        Column("x_id", ForeignKey("x.id"), primary_key=True),
        Column("y_id", ForeignKey("y.id"), primary_key=True),
    )

    class X(Base):
        __tablename__ = "x"
        id: Mapped[int] = mapped_column(primary_key=True)
        ys: Mapped[list[Y]] = relationship(
            secondary=table, info={asignal.sqlalchemy.M2M_SIDE_INFO_KEY: "left"}
        )

    class Y(Base):
        __tablename__ = "y"
        id: Mapped[int] = mapped_column(primary_key=True)

    X.__mapper__.registry.configure()
    with pytest.raises(ValueError, match="use 'forward' or 'reverse'"):
        asignal.sqlalchemy.install(Base)
    assert not asignal.sqlalchemy.is_installed(Base)


def test_m2m_side_can_be_chosen_by_hand(engine: Engine) -> None:
    class Base(DeclarativeBase):
        pass

    table = Table(
        "p_q",
        Base.metadata,
        Column("p_id", ForeignKey("p.id"), primary_key=True),
        Column("q_id", ForeignKey("q.id"), primary_key=True),
    )

    class P(Base):
        __tablename__ = "p"
        id: Mapped[int] = mapped_column(primary_key=True)
        qs: Mapped[list[Q]] = relationship(secondary=table, back_populates="ps")

    class Q(Base):
        __tablename__ = "q"
        id: Mapped[int] = mapped_column(primary_key=True)
        ps: Mapped[list[P]] = relationship(
            secondary=table,
            back_populates="qs",
            info={asignal.sqlalchemy.M2M_SIDE_INFO_KEY: "forward"},
        )

    Base.metadata.create_all(engine)
    asignal.sqlalchemy.install(Base)
    try:
        with capture_signals(m2m_changed) as recorder:
            _saves(engine, P(qs=[Q()]))
        # Changed from P, which was made the reverse side by hand.
        assert {s.kwargs["reverse"] for s in recorder.sent()} == {True}
    finally:
        asignal.sqlalchemy.uninstall(Base)


def test_the_import_error_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['sqlalchemy'] = None\n"
        "try:\n    import asignal.sqlalchemy\n"
        "except ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "pip install 'asignal[sqlalchemy]'" in out


def test_the_core_does_not_import_sqlalchemy() -> None:
    code = "import sys, asignal, asignal.signals; print('sqlalchemy' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "False"


def test_an_association_table_with_a_mapped_class_sends_from_that_class(
    engine: Engine,
) -> None:
    class Base(DeclarativeBase):
        pass

    class Membership(Base):
        __tablename__ = "membership"
        club_id: Mapped[int] = mapped_column(ForeignKey("club.id"), primary_key=True)
        member_id: Mapped[int] = mapped_column(
            ForeignKey("member.id"), primary_key=True
        )

    class Club(Base):
        __tablename__ = "club"
        id: Mapped[int] = mapped_column(primary_key=True)
        members: Mapped[list[Member]] = relationship(
            secondary="membership", viewonly=False, overlaps="memberships"
        )

    class Member(Base):
        __tablename__ = "member"
        id: Mapped[int] = mapped_column(primary_key=True)

    Base.metadata.create_all(engine)
    asignal.sqlalchemy.install(Base)
    try:
        with capture_signals(m2m_changed) as recorder:
            _saves(engine, Club(members=[Member()]))
        assert {s.sender for s in recorder.sent()} == {Membership}
    finally:
        asignal.sqlalchemy.uninstall(Base)


def test_self_referential_many_to_many(engine: Engine) -> None:
    class Base(DeclarativeBase):
        pass

    follows = Table(
        "follows",
        Base.metadata,
        Column("follower_id", ForeignKey("person.id"), primary_key=True),
        Column("followed_id", ForeignKey("person.id"), primary_key=True),
    )

    class Person(Base):
        __tablename__ = "person"
        id: Mapped[int] = mapped_column(primary_key=True)
        following: Mapped[list[Person]] = relationship(
            secondary=follows,
            primaryjoin=lambda: Person.id == follows.c.follower_id,
            secondaryjoin=lambda: Person.id == follows.c.followed_id,
            backref="followers",
        )

    Base.metadata.create_all(engine)
    asignal.sqlalchemy.install(Base)
    try:
        with Session(engine) as session:
            ann, bob, cat = Person(), Person(), Person()
            session.add_all([ann, bob, cat])
            session.commit()
            with capture_signals(m2m_changed) as recorder:
                ann.following.append(bob)
                cat.followers.append(bob)  # type: ignore[attr-defined]
                session.commit()
            sent = [
                (s.kwargs["action"], s.kwargs["instance"], s.kwargs["reverse"])
                for s in recorder.sent()
            ]
            pk_sets = {
                s.kwargs["instance"]: s.kwargs["pk_set"] for s in recorder.sent()
            }
            assert sorted(sent, key=lambda x: (x[0], x[2])) == [
                ("post_add", ann, False),
                ("post_add", cat, True),
                ("pre_add", ann, False),
                ("pre_add", cat, True),
            ]
            assert pk_sets == {ann: {bob.id}, cat: {bob.id}}
    finally:
        asignal.sqlalchemy.uninstall(Base)
