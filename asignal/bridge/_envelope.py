"""What crosses the wire: a versioned JSON envelope, never pickle.

One event is one UTF-8 JSON object::

    {"v": 1, "id": "<32 hex digits>", "signal": "shop.order_paid",
     "sender": null | "str" | 1 | 1.5 | true | {"ref": "module:qualname"},
     "kwargs": {...}, "origin": "web-1", "time": 1767225600.0,
     "headers": {"traceparent": "00-..."}}

Decoding trusts nothing: every field is checked for its type, the size is checked
before parsing, and a sender reference is only ever looked up in the senders
registered with the bridge, never imported.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "VERSION",
    "Envelope",
    "EnvelopeError",
    "decode_envelope",
    "encode_envelope",
    "encode_sender",
    "sender_ref",
]

#: The envelope format's version; a node refuses (dead-letters) any other.
VERSION = 1

_PLAIN_SENDERS = (str, int, float, bool)


class EnvelopeError(ValueError):
    """Raised when bytes read from a transport are not a valid event envelope."""


@dataclass(frozen=True)
class Envelope:
    """One event as it travels between nodes.

    :ivar id: unique per event (a UUID4 in hex); the key of the per-receiver success
        record on redelivery.
    :ivar signal: the signal's ``name``.
    :ivar sender: the encoded sender: ``None``, a ``str``, ``int``, ``float`` or
        ``bool`` as itself, or ``{"ref": "module:qualname"}`` for a registered class
        or function.
    :ivar kwargs: the send's keyword arguments, after the signal's codec if any.
    :ivar origin: the ``node_id`` of the node that published it.
    :ivar time: when it was published, seconds since the epoch.
    :ivar headers: string headers, such as a W3C ``traceparent``.
    """

    signal: str
    sender: Any
    kwargs: dict[str, Any]
    origin: str
    headers: dict[str, str] = field(default_factory=dict[str, str])
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    time: float = field(default_factory=time.time)


def sender_ref(sender: object) -> str | None:
    """``module:qualname`` of a class or function, or None if it has none that a
    reader could match (a lambda, a nested function: ``<locals>`` in the name)."""
    module = getattr(sender, "__module__", None)
    qualname = getattr(sender, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str):
        return None
    if "<" in qualname:
        return None
    return f"{module}:{qualname}"


def encode_sender(sender: object, signal_name: str) -> Any:
    """The wire form of *sender*.

    :raises TypeError: the sender is neither a plain value nor a class or function
        with a stable name.
    """
    if sender is None or type(sender) in _PLAIN_SENDERS:
        if isinstance(sender, float) and not math.isfinite(sender):
            raise TypeError(
                f"sender {sender!r} of signal {signal_name!r} cannot cross a bridge: "
                "JSON has no NaN or infinity."
            )
        return sender
    if isinstance(sender, type) or callable(sender):
        ref = sender_ref(sender)
        if ref is not None:
            return {"ref": ref}
    raise TypeError(
        f"sender {sender!r} of signal {signal_name!r} cannot cross a bridge: only "
        "None, str, int, float, bool, and classes or module-level functions "
        "registered with bridge.add(signal, senders=[...]) travel."
    )


def encode_envelope(envelope: Envelope, *, limit: int) -> bytes:
    """The envelope as UTF-8 JSON.

    :raises TypeError: a keyword argument is not JSON-serialisable (named, with the
        signal).
    :raises ValueError: the encoded event is larger than *limit* bytes.
    """
    try:
        data = json.dumps(
            {
                "v": VERSION,
                "id": envelope.id,
                "signal": envelope.signal,
                "sender": envelope.sender,
                "kwargs": envelope.kwargs,
                "origin": envelope.origin,
                "time": envelope.time,
                "headers": envelope.headers,
            },
            allow_nan=False,
            separators=(",", ":"),
        ).encode()
    except (TypeError, ValueError):
        # Encode once on the common path; find the culprit only when it failed.
        _name_unencodable(envelope)
        raise
    if len(data) > limit:
        raise ValueError(
            f"an event of signal {envelope.signal!r} is {len(data)} bytes encoded, "
            f"more than the bridge's max_message_bytes={limit}; send a reference "
            "(an id) instead of the data, or raise the limit on every node."
        )
    return data


def _name_unencodable(envelope: Envelope) -> None:
    """Raise a TypeError naming the first keyword argument JSON cannot carry."""
    for name, value in envelope.kwargs.items():
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"argument {name!r} of signal {envelope.signal!r} cannot cross a "
                f"bridge: {exc}. Pass JSON-serialisable values (str, int, float, bool, "
                "None, lists and dicts of them), or add the signal with a codec, "
                "bridge.add(signal, codec=...), that encodes it."
            ) from None


def decode_envelope(data: bytes, *, limit: int) -> Envelope:
    """Parse and check bytes read from a transport.

    :raises EnvelopeError: oversized, not JSON, another version, or a field of the
        wrong type; the message says which.
    """
    if len(data) > limit:
        raise EnvelopeError(f"message of {len(data)} bytes exceeds the limit {limit}")
    try:
        raw: object = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise EnvelopeError(f"not a JSON event: {exc}") from None
    if not isinstance(raw, dict):
        raise EnvelopeError("not a JSON object")
    obj: dict[str, Any] = raw  # pyright: ignore[reportUnknownVariableType]
    if obj.get("v") != VERSION:
        raise EnvelopeError(
            f"envelope version {obj.get('v')!r} is not {VERSION}, the one this node "
            "reads"
        )
    event_id = _field(obj, "id", str)
    signal = _field(obj, "signal", str)
    origin = _field(obj, "origin", str)
    kwargs = _field(obj, "kwargs", dict)
    headers = _field(obj, "headers", dict)
    published = obj.get("time")
    if isinstance(published, bool) or not isinstance(published, (int, float)):
        raise EnvelopeError("field 'time' is missing or not a number")
    if not all(isinstance(v, str) for v in headers.values()):
        raise EnvelopeError("field 'headers' holds a value that is not a string")
    sender = obj.get("sender")
    if isinstance(sender, dict):
        ref = _sender_ref_field(sender)  # pyright: ignore[reportUnknownArgumentType]
        sender = {"ref": ref}
    elif sender is not None and type(sender) not in _PLAIN_SENDERS:
        raise EnvelopeError("field 'sender' is of no type a sender can have")
    return Envelope(
        id=event_id,
        signal=signal,
        sender=sender,
        kwargs=kwargs,
        origin=origin,
        time=float(published),
        headers=headers,
    )


def _field(obj: Mapping[str, Any], name: str, kind: type[Any]) -> Any:
    value = obj.get(name)
    if not isinstance(value, kind):
        raise EnvelopeError(f"field {name!r} is missing or not a {kind.__name__}")
    return value


def _sender_ref_field(sender: Mapping[str, Any]) -> str:
    ref = sender.get("ref")
    if set(sender) != {"ref"} or not isinstance(ref, str):
        raise EnvelopeError("field 'sender' is an object but not {'ref': '...'}")
    return ref
