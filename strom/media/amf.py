"""AMF0 encode/decode and AMF3 decode/encode (the subset RTMP commands use).

References: *Action Message Format -- AMF 0* (Adobe, 2007) and *Action Message Format --
AMF 3* (Adobe, 2013). Python mapping:

====================  ==============================================================
AMF                   Python
====================  ==============================================================
number / integer      ``float`` (AMF0 always; AMF3 ``integer`` decodes to ``int``)
boolean               ``bool``
string, long string,  ``str``
XML document
null                  ``None``
undefined,            :data:`UNDEFINED`
unsupported
object                ``dict[str, object]``
ECMA array            :class:`EcmaArray` (a ``dict`` that encodes back as ECMA array)
typed object          :class:`TypedObject` (a ``dict`` with ``class_name``)
strict array          ``list``
date                  ``datetime`` (UTC)
AMF3 ByteArray        ``bytes``
====================  ==============================================================

Every read is bounds-checked against the message it comes from and nesting depth is
bounded, so a hostile peer gets an :class:`~strom.errors.AmfError`, never a crash or a
huge allocation: any length or count must fit in the bytes that are actually left.

References (AMF0 2.9, AMF3 2.2) make the decoded values a graph that shares objects: a
few hundred bytes of arrays referring twice to the previous one would print, compare or
re-encode as gigabytes. So a message's values, written out in full with every reference
replaced by what it refers to, may be at most :data:`MAX_EXPANSION` times the message
(plus a little), and nest at most ``max_depth`` deep through references too: whatever
walks them afterwards (a log line, ``str()``) does work linear in the bytes received.
"""

from __future__ import annotations

import enum
import math
import struct
from datetime import UTC, datetime, timedelta
from typing import Final

from strom.errors import AmfError, LocalProtocolError

#: Default bound on nested objects/arrays in one value.
MAX_DEPTH: Final = 32
#: Bound on a message's values written out in full (references replaced by what they
#: refer to), as a multiple of the message's size, plus :data:`_EXPANSION_ALLOWANCE`.
MAX_EXPANSION: Final = 8
_EXPANSION_ALLOWANCE: Final = 1024

#: A complex value's size written out in full, and how many levels it nests.
_Shape = tuple[int, int]

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


class Undefined(enum.Enum):
    """AMF ``undefined``; a singleton distinct from ``None`` (AMF ``null``)."""

    UNDEFINED = "undefined"

    def __repr__(self) -> str:
        return "UNDEFINED"


UNDEFINED: Final = Undefined.UNDEFINED


class EcmaArray(dict[str, object]):
    """An associative array; encodes as AMF0 ECMA array (``onMetaData`` uses one)."""


class TypedObject(dict[str, object]):
    """An object with a registered class name (AMF0 typed object, AMF3 sealed class)."""

    def __init__(self, class_name: str, members: dict[str, object] | None = None) -> None:
        super().__init__(members or {})
        self.class_name = class_name


# AMF0 type markers (AMF0 spec section 2.1).
_NUMBER, _BOOLEAN, _STRING, _OBJECT, _MOVIECLIP, _NULL, _UNDEFINED = range(7)
_REFERENCE, _ECMA_ARRAY, _OBJECT_END, _STRICT_ARRAY, _DATE, _LONG_STRING = range(7, 13)
_UNSUPPORTED, _RECORDSET, _XML_DOCUMENT, _TYPED_OBJECT, _AVMPLUS = range(13, 18)

# AMF3 type markers (AMF3 spec section 3.1).
_A3_UNDEFINED, _A3_NULL, _A3_FALSE, _A3_TRUE, _A3_INTEGER, _A3_DOUBLE, _A3_STRING = range(7)
_A3_XML_DOC, _A3_DATE, _A3_ARRAY, _A3_OBJECT, _A3_XML, _A3_BYTE_ARRAY = range(7, 13)
_A3_VECTOR_INT, _A3_VECTOR_UINT, _A3_VECTOR_DOUBLE, _A3_VECTOR_OBJECT = range(13, 17)

_A3_INT_MIN: Final = -(1 << 28)
_A3_INT_MAX: Final = (1 << 28) - 1


def _date_from_ms(ms: float) -> datetime:
    if not math.isfinite(ms):
        raise AmfError(f"AMF date is not a number: {ms!r}")
    try:
        return _EPOCH + timedelta(milliseconds=ms)
    except OverflowError as exc:
        raise AmfError(f"AMF date out of range: {ms!r} ms") from exc


def _ms_from_date(value: datetime) -> float:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - _EPOCH) / timedelta(milliseconds=1)


class _Reader:
    """A bounds-checked cursor over one message."""

    __slots__ = ("data", "depth", "expanded", "max_depth", "max_expanded", "pos", "reach")

    def __init__(self, data: bytes, max_depth: int) -> None:
        self.data = data
        self.pos = 0
        self.depth = 0
        self.max_depth = max_depth
        #: bytes that references stand for, beyond the message itself
        self.expanded = 0
        self.max_expanded = MAX_EXPANSION * len(data) + _EXPANSION_ALLOWANCE
        #: the deepest nesting reached, through references too
        self.reach = 0

    @property
    def remaining(self) -> int:
        return len(self.data) - self.pos

    def take(self, n: int) -> bytes:
        if n > self.remaining:
            raise AmfError(f"truncated AMF data: need {n} bytes at offset {self.pos}")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def u8(self) -> int:
        if self.pos >= len(self.data):
            raise AmfError(f"truncated AMF data at offset {self.pos}")
        self.pos += 1
        return self.data[self.pos - 1]

    def unpack(self, fmt: struct.Struct) -> tuple[int | float, ...]:
        return fmt.unpack(self.take(fmt.size))

    def utf8(self, n: int) -> str:
        try:
            return self.take(n).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise AmfError("AMF string is not valid UTF-8") from exc

    def count(self, n: int, min_item_size: int = 1) -> int:
        """Check that ``n`` items of at least ``min_item_size`` bytes can still follow."""
        if n * min_item_size > self.remaining:
            raise AmfError(f"AMF count {n} exceeds the {self.remaining} bytes left")
        return n

    def enter(self) -> None:
        self.depth += 1
        if self.depth > self.max_depth:
            raise AmfError(f"AMF nesting deeper than {self.max_depth}")
        self.reach = max(self.reach, self.depth)

    def leave(self) -> None:
        self.depth -= 1

    def begin(self) -> tuple[int, int, int]:
        """Start measuring a complex value (before entering it)."""
        mark = (self.pos, self.expanded, self.reach)
        self.reach = self.depth
        return mark

    def end(self, mark: tuple[int, int, int]) -> _Shape:
        """The shape of the value begun at ``mark`` (after leaving it)."""
        pos, expanded, reach = mark
        shape = (self.pos - pos + self.expanded - expanded, self.reach - self.depth)
        self.reach = max(reach, self.reach)
        return shape

    def follow(self, shape: _Shape) -> None:
        """A reference to a value of ``shape``: it counts as if written out here."""
        size, height = shape
        self.expanded += size
        if self.expanded > self.max_expanded:
            raise AmfError(f"AMF references expand the message beyond {MAX_EXPANSION}x its size")
        if self.depth + height > self.max_depth:
            raise AmfError(f"AMF nesting deeper than {self.max_depth} through a reference")
        self.reach = max(self.reach, self.depth + height)


_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_S16 = struct.Struct(">h")
_F64 = struct.Struct(">d")
_I32 = struct.Struct(">i")


# --------------------------------------------------------------------------- AMF0 decode


class _Amf0Decoder:
    def __init__(self, reader: _Reader) -> None:
        self.r = reader
        # AMF0 section 2.9: complex values are numbered in order of appearance.
        self.objects: list[object] = []
        self.shapes: dict[int, _Shape] = {}
        self.in_progress: set[int] = set()

    def value(self) -> object:
        marker = self.r.u8()
        r = self.r
        if marker == _NUMBER:
            return r.unpack(_F64)[0]
        if marker == _BOOLEAN:
            return r.u8() != 0
        if marker == _STRING:
            return r.utf8(int(r.unpack(_U16)[0]))
        if marker in (_LONG_STRING, _XML_DOCUMENT):
            return r.utf8(int(r.unpack(_U32)[0]))
        if marker == _NULL:
            return None
        if marker in (_UNDEFINED, _UNSUPPORTED):
            return UNDEFINED
        if marker == _OBJECT:
            return self._properties({})
        if marker == _ECMA_ARRAY:
            r.take(4)  # associative count: a hint only, encoders get it wrong (section 2.10)
            return self._properties(EcmaArray())
        if marker == _TYPED_OBJECT:
            class_name = r.utf8(int(r.unpack(_U16)[0]))
            return self._properties(TypedObject(class_name))
        if marker == _STRICT_ARRAY:
            return self._strict_array()
        if marker == _DATE:
            ms = float(r.unpack(_F64)[0])
            r.take(2)  # time zone: reserved, SHOULD be 0 (section 2.13)
            return _date_from_ms(ms)
        if marker == _REFERENCE:
            index = int(r.unpack(_U16)[0])
            if index >= len(self.objects) or index in self.in_progress:
                raise AmfError(f"AMF0 reference {index} is not a completed object")
            r.follow(self.shapes[index])
            return self.objects[index]
        if marker == _AVMPLUS:
            # Section 3.1: the value that follows is AMF3, with its own reference tables.
            return _Amf3Decoder(r).value()
        if marker == _OBJECT_END:
            raise AmfError("AMF0 object-end marker outside an object")
        raise AmfError(f"unsupported AMF0 type marker 0x{marker:02x}")

    def _register(self, value: object) -> int:
        self.objects.append(value)
        self.in_progress.add(len(self.objects) - 1)
        return len(self.objects) - 1

    def _properties(self, target: dict[str, object]) -> dict[str, object]:
        index = self._register(target)
        r = self.r
        mark = r.begin()
        r.enter()
        while True:
            key = r.utf8(int(r.unpack(_U16)[0]))
            if key == "" and r.remaining and r.data[r.pos] == _OBJECT_END:
                r.pos += 1
                break
            target[key] = self.value()
        r.leave()
        self.shapes[index] = r.end(mark)
        self.in_progress.discard(index)
        return target

    def _strict_array(self) -> list[object]:
        r = self.r
        n = r.count(int(r.unpack(_U32)[0]))
        items: list[object] = []
        index = self._register(items)
        mark = r.begin()
        r.enter()
        for _ in range(n):
            items.append(self.value())
        r.leave()
        self.shapes[index] = r.end(mark)
        self.in_progress.discard(index)
        return items


def decode_amf0(data: bytes, *, max_depth: int = MAX_DEPTH) -> list[object]:
    """Decode every AMF0 value in ``data`` (one RTMP command or data message body)."""
    reader = _Reader(bytes(data), max_depth)
    decoder = _Amf0Decoder(reader)
    values: list[object] = []
    while reader.remaining:
        values.append(decoder.value())
    return values


# --------------------------------------------------------------------------- AMF0 encode


def _encode_amf0_value(value: object, out: bytearray, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise LocalProtocolError("value nests too deep (or is cyclic) for AMF0")
    if value is None:
        out.append(_NULL)
    elif value is UNDEFINED:
        out.append(_UNDEFINED)
    elif isinstance(value, bool):
        out += bytes((_BOOLEAN, int(value)))
    elif isinstance(value, int | float):
        out.append(_NUMBER)
        out += _F64.pack(float(value))
    elif isinstance(value, str):
        raw = value.encode("utf-8")
        if len(raw) <= 0xFFFF:
            out.append(_STRING)
            out += _U16.pack(len(raw))
        else:
            out.append(_LONG_STRING)
            out += _U32.pack(len(raw))
        out += raw
    elif isinstance(value, datetime):
        out.append(_DATE)
        out += _F64.pack(_ms_from_date(value)) + b"\x00\x00"
    elif isinstance(value, dict):
        if isinstance(value, TypedObject):
            name = value.class_name.encode("utf-8")
            out.append(_TYPED_OBJECT)
            out += _U16.pack(len(name)) + name
        elif isinstance(value, EcmaArray):
            out.append(_ECMA_ARRAY)
            out += _U32.pack(len(value))
        else:
            out.append(_OBJECT)
        for key, item in value.items():
            raw_key = str(key).encode("utf-8")
            out += _U16.pack(len(raw_key)) + raw_key
            _encode_amf0_value(item, out, depth + 1)
        out += b"\x00\x00\x09"
    elif isinstance(value, list | tuple):
        out.append(_STRICT_ARRAY)
        out += _U32.pack(len(value))
        for item in value:
            _encode_amf0_value(item, out, depth + 1)
    else:
        raise LocalProtocolError(f"cannot encode {type(value).__name__} as AMF0")


def encode_amf0(*values: object) -> bytes:
    """Encode ``values`` one after another as AMF0 (no references are emitted)."""
    out = bytearray()
    for value in values:
        _encode_amf0_value(value, out, 0)
    return bytes(out)


# --------------------------------------------------------------------------- AMF3 decode


class _Amf3Decoder:
    def __init__(self, reader: _Reader) -> None:
        self.r = reader
        # AMF3 section 2.2: three reference tables.
        self.strings: list[str] = []
        self.objects: list[object] = []
        self.shapes: dict[int, _Shape] = {}
        self.in_progress: set[int] = set()
        self.traits: list[tuple[str, bool, list[str]]] = []

    def u29(self) -> int:
        """AMF3 section 1.3.1: variable length unsigned 29-bit integer."""
        result = 0
        for _ in range(3):
            byte = self.r.u8()
            result = (result << 7) | (byte & 0x7F)
            if not byte & 0x80:
                return result
        return (result << 8) | self.r.u8()

    def string(self) -> str:
        header = self.u29()
        if not header & 1:
            return self._string_ref(header >> 1)
        text = self.r.utf8(header >> 1)
        if text:
            self.strings.append(text)
        return text

    def _string_ref(self, index: int) -> str:
        if index >= len(self.strings):
            raise AmfError(f"AMF3 string reference {index} out of range")
        text = self.strings[index]
        self.r.follow((len(text), 0))
        return text

    def _object_ref(self, index: int) -> object:
        if index >= len(self.objects) or index in self.in_progress:
            raise AmfError(f"AMF3 object reference {index} is not a completed object")
        self.r.follow(self.shapes[index])
        return self.objects[index]

    def _register(self, value: object) -> int:
        self.objects.append(value)
        self.in_progress.add(len(self.objects) - 1)
        return len(self.objects) - 1

    def value(self) -> object:
        marker = self.r.u8()
        simple = {_A3_UNDEFINED: UNDEFINED, _A3_NULL: None, _A3_FALSE: False, _A3_TRUE: True}
        if marker in simple:
            return simple[marker]
        if marker == _A3_INTEGER:
            n = self.u29()
            return n - (1 << 29) if n & (1 << 28) else n
        if marker == _A3_DOUBLE:
            return self.r.unpack(_F64)[0]
        if marker == _A3_STRING:
            return self.string()
        handlers = {
            _A3_XML_DOC: self._xml,
            _A3_XML: self._xml,
            _A3_DATE: self._date,
            _A3_ARRAY: self._array,
            _A3_OBJECT: self._object,
            _A3_BYTE_ARRAY: self._byte_array,
            _A3_VECTOR_INT: self._vector,
            _A3_VECTOR_UINT: self._vector,
            _A3_VECTOR_DOUBLE: self._vector,
            _A3_VECTOR_OBJECT: self._vector,
        }
        handler = handlers.get(marker)
        if handler is None:
            raise AmfError(f"unsupported AMF3 type marker 0x{marker:02x}")
        header = self.u29()
        if not header & 1:
            return self._object_ref(header >> 1)
        index = len(self.objects)  # where the handler files this value
        mark = self.r.begin()
        self.r.enter()
        result = handler(marker, header >> 1)
        self.r.leave()
        self.shapes[index] = self.r.end(mark)
        return result

    def _xml(self, _marker: int, length: int) -> object:
        text = self.r.utf8(length)
        self.objects.append(text)
        return text

    def _date(self, _marker: int, _unused: int) -> object:
        value = _date_from_ms(float(self.r.unpack(_F64)[0]))
        self.objects.append(value)
        return value

    def _byte_array(self, _marker: int, length: int) -> object:
        value = self.r.take(length)
        self.objects.append(value)
        return value

    def _array(self, _marker: int, dense_count: int) -> object:
        self.r.count(dense_count)
        assoc: dict[str, object] = {}
        dense: list[object] = []
        index = self._register(dense)
        while key := self.string():
            assoc[key] = self.value()
        for _ in range(dense_count):
            dense.append(self.value())
        self.in_progress.discard(index)
        if not assoc:
            return dense
        # A mixed array has no Python twin; keep both parts in one mapping.
        assoc.update((str(i), item) for i, item in enumerate(dense))
        self.objects[index] = assoc
        return assoc

    def _object(self, _marker: int, header: int) -> object:
        # header is U29O without its low bit (section 3.12).
        if not header & 1:
            index = header >> 1
            if index >= len(self.traits):
                raise AmfError(f"AMF3 traits reference {index} out of range")
            class_name, dynamic, sealed = self.traits[index]
        else:
            if header & 2:
                raise AmfError("AMF3 externalizable objects are not supported")
            dynamic = bool(header & 4)
            sealed_count = self.r.count(header >> 3)
            class_name = self.string()
            sealed = [self.string() for _ in range(sealed_count)]
            self.traits.append((class_name, dynamic, sealed))
        obj: dict[str, object] = TypedObject(class_name) if class_name else {}
        index = self._register(obj)
        for name in sealed:
            obj[name] = self.value()
        if dynamic:
            while key := self.string():
                obj[key] = self.value()
        self.in_progress.discard(index)
        return obj

    def _vector(self, marker: int, count: int) -> object:
        self.r.u8()  # fixed-length flag (section 3.15): irrelevant once decoded
        items: list[object] = []
        if marker == _A3_VECTOR_OBJECT:
            self.r.count(count)
            self.string()  # element type name
            index = self._register(items)
            items.extend(self.value() for _ in range(count))
            self.in_progress.discard(index)
            return items
        fmt = {_A3_VECTOR_INT: _I32, _A3_VECTOR_UINT: _U32, _A3_VECTOR_DOUBLE: _F64}[marker]
        self.r.count(count, fmt.size)
        items.extend(self.r.unpack(fmt)[0] for _ in range(count))
        self.objects.append(items)
        return items


def decode_amf3(data: bytes, *, max_depth: int = MAX_DEPTH) -> list[object]:
    """Decode every AMF3 value in ``data`` (one shared set of reference tables)."""
    reader = _Reader(bytes(data), max_depth)
    decoder = _Amf3Decoder(reader)
    values: list[object] = []
    while reader.remaining:
        values.append(decoder.value())
    return values


# --------------------------------------------------------------------------- AMF3 encode


def _u29(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    if n < 0x4000:
        return bytes((0x80 | n >> 7, n & 0x7F))
    if n < 0x200000:
        return bytes((0x80 | n >> 14, 0x80 | (n >> 7) & 0x7F, n & 0x7F))
    if n < 0x20000000:
        return bytes((0x80 | n >> 22, 0x80 | (n >> 15) & 0x7F, 0x80 | (n >> 8) & 0x7F, n & 0xFF))
    raise LocalProtocolError(f"{n} does not fit an AMF3 U29")


def _amf3_string(text: str, out: bytearray) -> None:
    raw = text.encode("utf-8")
    out += _u29(len(raw) << 1 | 1) + raw


def _encode_amf3_value(value: object, out: bytearray, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise LocalProtocolError("value nests too deep (or is cyclic) for AMF3")
    if value is UNDEFINED:
        out.append(_A3_UNDEFINED)
    elif value is None:
        out.append(_A3_NULL)
    elif isinstance(value, bool):
        out.append(_A3_TRUE if value else _A3_FALSE)
    elif isinstance(value, int) and _A3_INT_MIN <= value <= _A3_INT_MAX:
        out.append(_A3_INTEGER)
        out += _u29(value & 0x1FFFFFFF)
    elif isinstance(value, int | float):
        out.append(_A3_DOUBLE)
        out += _F64.pack(float(value))
    elif isinstance(value, str):
        out.append(_A3_STRING)
        _amf3_string(value, out)
    elif isinstance(value, bytes | bytearray):
        out.append(_A3_BYTE_ARRAY)
        out += _u29(len(value) << 1 | 1) + value
    elif isinstance(value, datetime):
        out.append(_A3_DATE)
        out += b"\x01" + _F64.pack(_ms_from_date(value))
    elif isinstance(value, list | tuple):
        out.append(_A3_ARRAY)
        out += _u29(len(value) << 1 | 1) + b"\x01"  # empty associative part
        for item in value:
            _encode_amf3_value(item, out, depth + 1)
    elif isinstance(value, dict):
        # Dynamic object, no sealed members, inline traits: U29O-traits = 0b1011.
        out.append(_A3_OBJECT)
        out.append(0x0B)
        _amf3_string(value.class_name if isinstance(value, TypedObject) else "", out)
        for key, item in value.items():
            _amf3_string(str(key), out)
            _encode_amf3_value(item, out, depth + 1)
        out.append(0x01)
    else:
        raise LocalProtocolError(f"cannot encode {type(value).__name__} as AMF3")


def encode_amf3(*values: object) -> bytes:
    """Encode ``values`` as AMF3 (no references are emitted)."""
    out = bytearray()
    for value in values:
        _encode_amf3_value(value, out, 0)
    return bytes(out)
