from __future__ import annotations

import struct
from datetime import UTC, datetime

import pytest

from strom.errors import AmfError, LocalProtocolError
from strom.media.amf import (
    UNDEFINED,
    EcmaArray,
    TypedObject,
    decode_amf0,
    decode_amf3,
    encode_amf0,
    encode_amf3,
)

VALUES: list[object] = [
    0.0,
    -1.5,
    1e300,
    True,
    False,
    "",
    "connect",
    "ünïcødé ✓",
    None,
    UNDEFINED,
    {"app": "live", "tcUrl": "rtmp://h/live", "nested": {"a": [1.0, "b", None]}},
    EcmaArray(duration=2.0, width=320.0, stereo=False),
    [1.0, [2.0, [3.0]], {}],
    datetime(2024, 5, 17, 12, 30, 1, 250000, tzinfo=UTC),
]


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_amf0_round_trip(value: object) -> None:
    assert decode_amf0(encode_amf0(value)) == [value]


def test_amf0_several_values_and_types_are_kept() -> None:
    data = encode_amf0("onMetaData", EcmaArray(a=1.0), TypedObject("flex.Foo", {"x": 1.0}))
    name, ecma, typed = decode_amf0(data)
    assert name == "onMetaData"
    assert isinstance(ecma, EcmaArray)
    assert ecma == {"a": 1.0}
    assert isinstance(typed, TypedObject)
    assert typed.class_name == "flex.Foo"
    assert typed == {"x": 1.0}
    # Round trip to the same bytes.
    assert encode_amf0(name, ecma, typed) == data


def test_amf0_long_string() -> None:
    text = "x" * 70000
    data = encode_amf0(text)
    assert data[0] == 0x0C  # long string marker
    assert decode_amf0(data) == [text]


def test_amf0_known_bytes_of_a_connect_command() -> None:
    data = encode_amf0("connect", 1, {"app": "live"})
    assert data == (
        b"\x02\x00\x07connect"
        b"\x00" + struct.pack(">d", 1.0) + b"\x03\x00\x03app\x02\x00\x04live\x00\x00\x09"
    )


def test_amf0_reference_points_at_earlier_object() -> None:
    obj = encode_amf0({"k": 1.0})
    data = encode_amf0([])[:1] + struct.pack(">I", 2) + obj + b"\x07\x00\x01"
    outer = decode_amf0(data)[0]
    assert outer == [{"k": 1.0}, {"k": 1.0}]


def test_amf0_ecma_array_count_is_only_a_hint() -> None:
    # Encoders put wrong counts in ECMA arrays; the end marker is what counts.
    data = (
        b"\x08" + struct.pack(">I", 99) + b"\x00\x01a\x00" + struct.pack(">d", 1) + b"\x00\x00\x09"
    )
    assert decode_amf0(data) == [{"a": 1.0}]


def test_amf0_unsupported_marker_is_undefined() -> None:
    assert decode_amf0(b"\x0d") == [UNDEFINED]


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"\x00\x01\x02", id="truncated number"),
        pytest.param(b"\x02\x00\x10abc", id="string longer than message"),
        pytest.param(b"\x0c\xff\xff\xff\xffab", id="absurd long string"),
        pytest.param(b"\x0a\xff\xff\xff\xff", id="absurd strict array count"),
        pytest.param(b"\x03\x00\x01a\x00", id="object without end"),
        pytest.param(b"\x03\x00\x01a", id="object key without value"),
        pytest.param(b"\x09", id="object end outside object"),
        pytest.param(b"\x04", id="movieclip"),
        pytest.param(b"\x0e", id="recordset"),
        pytest.param(b"\x42", id="bad marker"),
        pytest.param(b"\x07\x00\x00", id="reference to nothing"),
        pytest.param(b"\x03\x00\x01a\x07\x00\x00\x00\x00\x09", id="reference to itself"),
        pytest.param(b"\x02\x00\x02\xff\xfe", id="invalid utf-8"),
        pytest.param(b"\x0b" + struct.pack(">d", float("nan")) + b"\x00\x00", id="nan date"),
        pytest.param(b"\x0b" + struct.pack(">d", 1e300) + b"\x00\x00", id="huge date"),
        pytest.param(b"\x11\x42", id="bad amf3 marker after switch"),
    ],
)
def test_amf0_malformed(data: bytes) -> None:
    with pytest.raises(AmfError):
        decode_amf0(data)


def test_amf0_deep_nesting_is_refused() -> None:
    deep = b"\x0a\x00\x00\x00\x01" * 40 + b"\x05"
    with pytest.raises(AmfError, match="nesting"):
        decode_amf0(deep)
    # Within the limit it decodes.
    assert decode_amf0(b"\x0a\x00\x00\x00\x01" * 10 + b"\x05")


def test_amf0_deep_objects_are_refused() -> None:
    deep = b"\x03\x00\x01k" * 40 + b"\x05"
    with pytest.raises(AmfError, match="nesting"):
        decode_amf0(deep)


def test_amf0_encoding_an_unsupported_type_is_our_bug() -> None:
    with pytest.raises(LocalProtocolError):
        encode_amf0(object())
    cyclic: list[object] = []
    cyclic.append(cyclic)
    with pytest.raises(LocalProtocolError):
        encode_amf0(cyclic)


# ---------------------------------------------------------------------------- AMF3

AMF3_VALUES: list[object] = [
    None,
    UNDEFINED,
    True,
    False,
    0,
    1,
    -1,
    (1 << 28) - 1,
    -(1 << 28),
    1 << 28,  # beyond the 29-bit integer: a double
    2.5,
    "",
    "objectEncoding",
    b"\x00\x01\xff",
    [1, "two", [3.5]],
    {"app": "live", "objectEncoding": 3, "list": [1, 2]},
    datetime(2001, 2, 3, 4, 5, 6, tzinfo=UTC),
]


@pytest.mark.parametrize("value", AMF3_VALUES, ids=repr)
def test_amf3_round_trip(value: object) -> None:
    assert decode_amf3(encode_amf3(value)) == [value]


def test_amf3_inside_amf0_via_avmplus_switch() -> None:
    data = encode_amf0("connect", 1.0) + b"\x11" + encode_amf3({"app": "live", "n": 7})
    assert decode_amf0(data) == ["connect", 1.0, {"app": "live", "n": 7}]


def test_amf3_string_and_object_references() -> None:
    # [ "abc", "abc"(ref 0), {a: 1}, obj-ref 1 ] -- the array itself is object 0.
    obj = b"\x0a\x0b\x01\x03a\x04\x01\x01"
    data = b"\x09\x09\x01" + b"\x06\x07abc" + b"\x06\x00" + obj + b"\x0a\x02"
    assert decode_amf3(data) == [["abc", "abc", {"a": 1}, {"a": 1}]]


def test_amf3_sealed_typed_object_and_traits_reference() -> None:
    # Two objects of class "P" with one sealed member "x"; the second reuses the traits.
    first = b"\x0a\x13\x03P\x03x\x04\x01"  # U29O-traits: 1 sealed, not dynamic
    second = b"\x0a\x01\x04\x02"  # traits ref 0
    a, b = decode_amf3(first + second)
    assert isinstance(a, TypedObject)
    assert a.class_name == "P"
    assert a == {"x": 1}
    assert b == {"x": 2}


def test_amf3_mixed_array_and_vectors() -> None:
    mixed = b"\x09\x03\x03k\x06\x03v\x01\x04\x05"  # dense [5], assoc {k: "v"}
    assert decode_amf3(mixed) == [{"k": "v", "0": 5}]
    vector_int = b"\x0d\x05\x00" + struct.pack(">ii", -1, 2)
    assert decode_amf3(vector_int) == [[-1, 2]]
    vector_double = b"\x0f\x03\x01" + struct.pack(">d", 0.5)
    assert decode_amf3(vector_double) == [[0.5]]


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"\x06\x00", id="string reference out of range"),
        pytest.param(b"\x06\x7f", id="string longer than message"),
        pytest.param(b"\x06\xff\xff\xff\xff", id="absurd string length"),
        pytest.param(b"\x09\xff\xff\xff\x01\x01", id="absurd array count"),
        pytest.param(b"\x0a\x07\x01", id="externalizable object"),
        pytest.param(b"\x0a\x01", id="traits reference out of range"),
        pytest.param(b"\x0a\x02", id="object reference out of range"),
        pytest.param(b"\x0d\xff\xff\xff\x01\x00", id="absurd vector count"),
        pytest.param(b"\x11\x03", id="dictionary"),
        pytest.param(b"\x04\x80", id="truncated integer"),
        pytest.param(b"\x09\x03\x01\x0a\x00", id="self-reference while decoding"),
        pytest.param(b"\x0c\x07ab", id="truncated byte array"),
    ],
)
def test_amf3_malformed(data: bytes) -> None:
    with pytest.raises(AmfError):
        decode_amf3(data)


def test_amf3_deep_nesting_is_refused() -> None:
    with pytest.raises(AmfError, match="nesting"):
        decode_amf3(b"\x09\x03\x01" * 40 + b"\x01")
