"""The wire format: what encodes, what decodes, and what is refused."""

from __future__ import annotations

import json

import pytest

from asignal.bridge import EnvelopeError
from asignal.bridge._envelope import (
    Envelope,
    decode_envelope,
    encode_envelope,
    encode_sender,
)
from asignal.bridge._transport import redact_url

from .bridge_support import Order

LIMIT = 10_000


def _roundtrip(sender: object, **kwargs: object) -> Envelope:
    envelope = Envelope(
        signal="s", sender=encode_sender(sender, "s"), kwargs=kwargs, origin="a"
    )
    return decode_envelope(encode_envelope(envelope, limit=LIMIT), limit=LIMIT)


@pytest.mark.parametrize("sender", [None, "shop", 3, 2.5, True, False])
def test_plain_senders_travel_as_themselves(sender: object) -> None:
    """None, str, int, float and bool keep their value and type."""
    back = _roundtrip(sender).sender
    assert back == sender
    assert type(back) is type(sender)


def test_class_sender_travels_by_name() -> None:
    """A class travels as {'ref': 'module:qualname'}."""
    assert _roundtrip(Order).sender == {"ref": f"{Order.__module__}:Order"}


@pytest.mark.parametrize("sender", [object(), lambda: None, float("nan")])
def test_other_senders_refused(sender: object) -> None:
    """Instances, lambdas and NaN cannot be senders on the wire."""
    with pytest.raises(TypeError, match="cannot cross a bridge"):
        encode_sender(sender, "s")


def test_nan_argument_named() -> None:
    """JSON has no NaN: the argument is named in the TypeError."""
    with pytest.raises(TypeError, match="argument 'ratio' of signal 's'"):
        _roundtrip(None, ratio=float("nan"))


def test_the_wire_is_versioned_json() -> None:
    """The encoded event is a JSON object with every documented field."""
    envelope = Envelope(signal="s", sender=None, kwargs={"n": 1}, origin="a")
    raw = json.loads(encode_envelope(envelope, limit=LIMIT))
    assert set(raw) == {
        "v",
        "id",
        "signal",
        "sender",
        "kwargs",
        "origin",
        "time",
        "headers",
    }
    assert raw["v"] == 1
    assert len(raw["id"]) == 32


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"v": 1}', "field 'id'"),
        (
            b'{"v": 1, "id": "x", "signal": "s", "origin": "a", "kwargs": [], '
            b'"headers": {}, "time": 0}',
            "field 'kwargs'",
        ),
        (
            b'{"v": 1, "id": "x", "signal": "s", "origin": "a", "kwargs": {}, '
            b'"headers": {"a": 1}, "time": 0}',
            "headers",
        ),
        (
            b'{"v": 1, "id": "x", "signal": "s", "origin": "a", "kwargs": {}, '
            b'"headers": {}, "time": true}',
            "field 'time'",
        ),
        (
            b'{"v": 1, "id": "x", "signal": "s", "origin": "a", "kwargs": {}, '
            b'"headers": {}, "time": 0, "sender": [1]}',
            "field 'sender'",
        ),
    ],
)
def test_wrong_fields_refused(data: bytes, message: str) -> None:
    """Each field is checked for its type; the error names it."""
    with pytest.raises(EnvelopeError, match=message):
        decode_envelope(data, limit=LIMIT)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:s3cret@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        ("rediss://app:s3cret@[::1]:6380/2", "rediss://app:***@[::1]:6380/2"),
        (
            "unix:///run/redis.sock?db=1&password=s3cret",
            "unix:///run/redis.sock?db=1&password=***",
        ),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
    ],
)
def test_passwords_redacted(url: str, shown: str) -> None:
    """A password in the userinfo or the query never shows."""
    assert redact_url(url) == shown
