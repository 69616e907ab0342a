"""Plain data across the sandbox's process boundary: the codec between the test process (T) and the solution
process (S), and their request/reply loop.

Standalone like the rest of the harness (no raylign imports; loaded by :mod:`sandbox_harness` from this directory).

What a value may be on the wire: ``None``, ``bool``, ``int``, ``float``, ``complex``, ``str``, ``bytes``,
``bytearray``, ``list``, ``tuple``, ``dict``, ``set``, ``frozenset``, ``range``, ``Ellipsis``,
``fractions.Fraction`` and ``decimal.Decimal`` (rebuilt from ints/str), ``OrderedDict``, ``Counter``, a
``defaultdict`` of a builtin type and a dict's keys and items views (rebuilt from their pairs or items), and the
standard library's dates, times, timedeltas, deques, namedtuples and paths (tag ``A``: rebuilt from plain data
by :func:`_library_value`), nested at most ``MAX_DEPTH`` deep, at most ``MAX_FRAME`` bytes a frame. The decoder
builds exactly those types and nothing else, so a value that came from the solution compares, hashes and prints
the way plain data does, whatever the solution's own objects would have done. An object of any other type
crosses as an opaque *handle* (S keeps the object; T gets a ``Remote``, whose ``==`` is structural, never the
solution's), a callable from the test side as a *callback*, a mock of the tests' as a *mock handle* (tag ``R``:
its every use in S goes back to T's mock), and -- from T to S only, since T is trusted -- any other picklable
object as a pickle (with the source of the tests' own classes in it).

A frame is ``<4-byte little-endian length><tagged payload>``; the payload is a tuple: a request
``(kind, seq, ...)`` or a reply ``("ok", seq, value)`` / ``("exc", seq, type names, message[, (args, attributes,
cause)])``, the type names being the exception's class and its bases in method resolution order, separated by
spaces (``"InvalidInput ValueError Exception BaseException"``), its ``args`` (None unless plain data) and each
public attribute that is plain data coming along, and the names and message of the exception it was raised from.
"""
import os
import struct

MAX_DEPTH = 200
_FACTORIES = frozenset(("int", "float", "str", "list", "set", "dict", "tuple", "bool", "frozenset"))
MAX_FRAME = 64 << 20

_pack_d = struct.Struct("<d").pack
_unpack_d = struct.Struct("<d").unpack_from
_pack_dd = struct.Struct("<dd").pack
_unpack_dd = struct.Struct("<dd").unpack_from
_pack_I = struct.Struct("<I").pack
_unpack_I = struct.Struct("<I").unpack_from


class WireError(BaseException):
    """A frame that is not well-formed plain data (from the other side: a protocol violation). A
    ``BaseException``, so that a test's ``except Exception`` cannot swallow it."""


class Unsendable(TypeError):
    """A value that cannot cross (no handle table on this side)."""


def _int_bytes(n):
    return n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)


def encode(value, other=None):
    """Tagged bytes of ``value``. ``other(obj) -> (tag, payload)`` handles what is not plain data (handles,
    callbacks, pickles); without it such a value raises :class:`Unsendable`."""
    out = []
    append = out.append

    def enc(v, depth):
        if depth > MAX_DEPTH:
            raise Unsendable("value nested too deeply")
        t = type(v)
        if v is None:
            append(b"N")
        elif v is True:
            append(b"T")
        elif v is False:
            append(b"F")
        elif t is int:
            b = _int_bytes(v)
            append(b"i" + _pack_I(len(b)) + b)
        elif t is float:
            append(b"f" + _pack_d(v))
        elif t is str:
            b = v.encode("utf-8", "surrogatepass")
            append(b"s" + _pack_I(len(b)) + b)
        elif t is list or t is tuple or t is set or t is frozenset:
            append((b"l" if t is list else b"t" if t is tuple else b"S" if t is set else b"Z") + _pack_I(len(v)))
            for x in v:
                enc(x, depth + 1)
        elif t is dict:
            append(b"d" + _pack_I(len(v)))
            for k, x in v.items():
                enc(k, depth + 1)
                enc(x, depth + 1)
        elif t is bytes or t is bytearray:
            append((b"b" if t is bytes else b"B") + _pack_I(len(v)) + bytes(v))
        elif t is complex:
            append(b"c" + _pack_dd(v.real, v.imag))
        elif t is range:
            append(b"r")
            enc(v.start, depth + 1)
            enc(v.stop, depth + 1)
            enc(v.step, depth + 1)
        elif v is Ellipsis:
            append(b"E")
        elif other is not None:
            tag, payload = other(v)
            if tag is None:  # the other side turned it into plain data (a subclass of a builtin...)
                enc(payload, depth)
            else:
                append(tag)
                enc(payload, depth + 1)
        else:
            raise Unsendable(f"a {t.__name__} cannot cross the sandbox boundary")
    enc(value, 0)
    return b"".join(out)


def decode(data, other=None):
    """The plain value encoded in ``data``. Extension tags (``H`` handle, ``C`` callback, ``P`` pickle,
    ``n`` name) go to ``other(tag, payload)``; without it they are errors. ``Q`` (a fraction), ``D`` (a decimal),
    ``O`` (an ``OrderedDict``), ``K`` (a ``Counter``) and ``X`` (a ``defaultdict`` of a builtin type), as their
    pairs, ``V`` and ``I`` (a dict's keys and items views) are rebuilt here."""
    mv = memoryview(data)
    end = len(data)
    pos = [0]

    def need(n):
        p = pos[0]
        if n < 0 or p + n > end:
            raise WireError("truncated frame")
        pos[0] = p + n
        return p

    def count():
        p = need(4)
        n = _unpack_I(mv, p)[0]
        if n > end - pos[0]:  # every element takes at least one byte: a length past the end is a lie
            raise WireError("length past the end of the frame")
        return n

    def dec(depth):
        if depth > MAX_DEPTH:
            raise WireError("value nested too deeply")
        p = need(1)
        tag = data[p:p + 1]
        if tag == b"N":
            return None
        if tag == b"T":
            return True
        if tag == b"F":
            return False
        if tag == b"i":
            n = count()
            p = need(n)
            return int.from_bytes(mv[p:p + n], "little", signed=True)
        if tag == b"f":
            return _unpack_d(mv, need(8))[0]
        if tag == b"s":
            n = count()
            p = need(n)
            try:
                return str(mv[p:p + n], "utf-8", "surrogatepass")
            except UnicodeDecodeError as exc:
                raise WireError(f"bad text: {exc}") from None
        if tag == b"l":
            return [dec(depth + 1) for _ in range(count())]
        if tag == b"t":
            return tuple([dec(depth + 1) for _ in range(count())])
        if tag == b"S" or tag == b"Z":
            items = [dec(depth + 1) for _ in range(count())]
            try:
                return set(items) if tag == b"S" else frozenset(items)
            except TypeError as exc:
                raise WireError(f"unhashable set element: {exc}") from None
        if tag == b"d":
            n = count()
            out = {}
            for _ in range(n):
                k = dec(depth + 1)
                try:
                    out[k] = dec(depth + 1)
                except TypeError as exc:
                    raise WireError(f"unhashable dict key: {exc}") from None
            return out
        if tag == b"b" or tag == b"B":
            n = count()
            p = need(n)
            return bytes(mv[p:p + n]) if tag == b"b" else bytearray(mv[p:p + n])
        if tag == b"c":
            re_, im = _unpack_dd(mv, need(16))
            return complex(re_, im)
        if tag == b"r":
            a, b, c = dec(depth + 1), dec(depth + 1), dec(depth + 1)
            if type(a) is not int or type(b) is not int or type(c) is not int or c == 0:
                raise WireError("bad range")
            return range(a, b, c)
        if tag == b"E":
            return Ellipsis
        if tag in (b"Q", b"D", b"O", b"K", b"X", b"V", b"I", b"A") or (other is not None and tag in (b"H", b"C", b"P",
                                                                                                     b"n", b"R")):
            payload = dec(depth + 1)
            if tag == b"A":  # a standard-library value (a date, a deque, a namedtuple...): rebuilt from plain data
                return _library_value(payload)
            if tag == b"X":  # a defaultdict whose factory is a builtin type, by name, with its pairs
                if type(payload) is not tuple or len(payload) != 2 or payload[0] not in _FACTORIES \
                        or type(payload[1]) is not list or not all(type(x) is tuple and len(x) == 2
                                                                  for x in payload[1]):
                    raise WireError("bad defaultdict")
                import builtins
                from collections import defaultdict
                try:
                    return defaultdict(getattr(builtins, payload[0]), payload[1])
                except TypeError as exc:
                    raise WireError(f"unhashable dict key: {exc}") from None
            if tag in (b"V", b"I"):  # a dict's keys or items view (a keys view compares as a set)
                if type(payload) is not list or (tag == b"I" and not all(type(x) is tuple and len(x) == 2
                                                                         for x in payload)):
                    raise WireError("bad dict view")
                try:
                    return dict.fromkeys(payload).keys() if tag == b"V" else dict(payload).items()
                except TypeError as exc:
                    raise WireError(f"unhashable dict key: {exc}") from None
            if tag in (b"O", b"K"):  # an OrderedDict (its == minds the order) or a Counter, as their pairs
                if type(payload) is not list or not all(type(x) is tuple and len(x) == 2 for x in payload):
                    raise WireError("bad ordered dict or counter")
                from collections import Counter, OrderedDict
                try:
                    return OrderedDict(payload) if tag == b"O" else Counter(dict(payload))
                except TypeError as exc:
                    raise WireError(f"unhashable dict key: {exc}") from None
            if tag == b"Q":
                if type(payload) is not tuple or len(payload) != 2 or not all(type(x) is int for x in payload) \
                        or payload[1] == 0:
                    raise WireError("bad fraction")
                from fractions import Fraction
                return Fraction(*payload)
            if tag == b"D":
                if type(payload) is not str or len(payload) > 10000:
                    raise WireError("bad decimal")
                from decimal import Decimal, InvalidOperation
                try:
                    return Decimal(payload)
                except InvalidOperation:
                    raise WireError("bad decimal") from None
            return other(tag, payload)
        raise WireError(f"unknown tag {tag!r}")
    try:
        value = dec(0)
    except RecursionError:
        raise WireError("value nested too deeply") from None
    if pos[0] != end:
        raise WireError("trailing bytes after the value")
    return value


_NAMEDTUPLES: dict = {}  # (type name, fields) -> the class rebuilt for it


def library_payload(v):
    """S side: ``(kind, data)`` for a standard-library value that plain data rebuilds exactly (``datetime``'s
    date, datetime, time and timedelta; ``collections``' deque and namedtuples; ``pathlib``'s paths), else None.
    Exact classes only (a subclass's methods are the program's)."""
    import datetime
    t = type(v)
    if t is datetime.date:
        return "date", (v.year, v.month, v.day)
    if t is datetime.datetime or t is datetime.time:
        off = v.utcoffset()
        if off is not None and off != off // datetime.timedelta(seconds=1) * datetime.timedelta(seconds=1):
            return None
        parts = ((v.year, v.month, v.day) if t is datetime.datetime else ()) + (v.hour, v.minute, v.second,
                                                                                v.microsecond)
        return t.__name__, (parts, None if off is None else off // datetime.timedelta(seconds=1), v.fold)
    if t is datetime.timedelta:
        return "timedelta", (v.days, v.seconds, v.microseconds)
    if t.__module__ == "collections" and t.__name__ == "deque":
        return "deque", (list(v), v.maxlen)
    if t.__module__ == "pathlib" and t.__name__ in ("PosixPath", "PurePosixPath"):
        return "path", (t.__name__, str(v))
    fields = t.__dict__.get("_fields") if tuple in t.__bases__ else None
    if type(fields) is tuple and all(type(f) is str for f in fields) and len(fields) == len(v):
        return "namedtuple", (t.__name__, list(fields), tuple(tuple.__iter__(v)))
    return None


def _library_value(payload):
    """T side: the value of a :func:`library_payload`, checked (WireError if it is not one)."""
    if type(payload) is not tuple or len(payload) != 2 or type(payload[0]) is not str:
        raise WireError("bad library value")
    kind, data = payload
    try:
        if kind in ("date", "timedelta") and type(data) is tuple and len(data) == 3 and all(type(x) is int for x in data):
            import datetime
            return datetime.date(*data) if kind == "date" else datetime.timedelta(*data)
        if kind in ("datetime", "time") and type(data) is tuple and len(data) == 3 and type(data[0]) is tuple \
                and len(data[0]) == (7 if kind == "datetime" else 4) and all(type(x) is int for x in data[0]) \
                and (data[1] is None or type(data[1]) is int) and data[2] in (0, 1):
            import datetime
            tz = None if data[1] is None else datetime.timezone(datetime.timedelta(seconds=data[1]))
            return getattr(datetime, kind)(*data[0], tzinfo=tz, fold=data[2])
        if kind == "deque" and type(data) is tuple and len(data) == 2 and type(data[0]) is list \
                and (data[1] is None or (type(data[1]) is int and data[1] >= 0)):
            from collections import deque
            return deque(data[0], data[1])
        if kind == "path" and type(data) is tuple and len(data) == 2 and data[0] in ("PosixPath", "PurePosixPath") \
                and type(data[1]) is str:
            import pathlib
            return getattr(pathlib, data[0])(data[1])
        if kind == "namedtuple" and type(data) is tuple and len(data) == 3 and type(data[0]) is str \
                and type(data[1]) is list and all(type(f) is str for f in data[1]) and type(data[2]) is tuple \
                and len(data[1]) == len(data[2]) <= 256:
            key = (data[0], tuple(data[1]))
            if key not in _NAMEDTUPLES:
                from collections import namedtuple
                _NAMEDTUPLES[key] = namedtuple(data[0], data[1])
            return _NAMEDTUPLES[key](*data[2])
    except (ValueError, TypeError, OverflowError) as exc:
        raise WireError(f"bad {kind}: {exc}") from None
    raise WireError(f"bad library value {kind!r}")


def plain_of(v):
    """S side: the builtin value of an instance of a *subclass* of a builtin type (a namedtuple, an IntEnum, a
    str subclass...), compared the way the base type compares; None when ``v`` is not one."""
    if isinstance(v, bool):
        return bool(v)
    if isinstance(v, int):
        return int.__index__(v)
    if isinstance(v, float):
        return float.__float__(v)
    if isinstance(v, str):
        return str.__str__(v)
    if isinstance(v, (bytes, bytearray)):
        return bytes(v)
    if isinstance(v, complex):
        return complex(v.real, v.imag)
    if isinstance(v, tuple):
        return tuple(tuple.__iter__(v))
    if isinstance(v, list):
        return list(list.__iter__(v))
    if isinstance(v, dict):
        return dict(dict.items(v))
    if isinstance(v, frozenset):
        return frozenset(frozenset.__iter__(v))
    if isinstance(v, set):
        return set(set.__iter__(v))
    return None


# --------------------------------------------------------------------------------------------------------
# Frames
# --------------------------------------------------------------------------------------------------------

class Gone(BaseException):
    """The other side closed its end (it exited, or was killed); a ``BaseException`` like :class:`WireError`."""


def write_frame(fd, payload):
    if len(payload) > MAX_FRAME:
        raise Unsendable(f"a value of {len(payload)} bytes is over the {MAX_FRAME}-byte limit")
    data = memoryview(_pack_I(len(payload)) + payload)
    write = os.write
    try:
        while data:
            data = data[write(fd, data):]
    except BrokenPipeError:
        raise Gone() from None


def read_exact(fd, n, wait=None):
    chunks = []
    read = os.read
    while n:
        if wait is not None:
            wait()
        chunk = read(fd, min(n, 1 << 20))
        if not chunk:
            raise Gone()
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def read_frame(fd, wait=None):
    n = _unpack_I(read_exact(fd, 4, wait))[0]
    if n > MAX_FRAME:
        raise WireError(f"a frame of {n} bytes is over the limit")
    return read_exact(fd, n, wait)


class Endpoint:
    """One side of the T <-> S conversation: requests with sequence numbers, replies matched to the request
    they answer (strictly: the innermost one awaited), and requests from the other side served while waiting
    (a callback from the solution to a test's function, or a nested call back into the solution).

    ``serve(kind, args) -> value`` answers the other side's requests; ``enc_other``/``dec_other`` are the
    hooks of :func:`encode`/:func:`decode` for what is not plain data; ``wait`` is called before each read
    (T uses it to notice that S died while a child of S still holds the pipe open)."""

    def __init__(self, rfd, wfd, serve, enc_other=None, dec_other=None, wait=None):
        self.rfd, self.wfd, self.serve = rfd, wfd, serve
        self.enc_other, self.dec_other, self.wait = enc_other, dec_other, wait
        self.seq = 0

    def send(self, value):
        write_frame(self.wfd, encode(value, self.enc_other))

    def recv(self):
        frame = decode(read_frame(self.rfd, self.wait), self.dec_other)
        if type(frame) is not tuple or len(frame) < 2 or type(frame[0]) is not str or type(frame[1]) is not int:
            raise WireError("a frame that is not a request or a reply")
        return frame

    def request(self, kind, *args):
        seq = self.seq
        self.seq += 1
        self.send((kind, seq) + args)
        while True:
            frame = self.recv()
            if frame[0] == "ok" or frame[0] == "exc":
                if frame[1] != seq:
                    raise WireError(f"a reply to request {frame[1]} while waiting for {seq}")
                if frame[0] == "ok":
                    if len(frame) != 3:
                        raise WireError("bad reply")
                    return frame[2]
                if len(frame) not in (4, 5) or type(frame[2]) is not str or type(frame[3]) is not str:
                    raise WireError("bad error reply")
                extra = frame[4] if len(frame) == 5 else (None, {}, None)
                if type(extra) is not tuple or len(extra) != 3 or type(extra[0]) not in (tuple, type(None)) \
                        or type(extra[1]) is not dict or not (extra[2] is None or (
                            type(extra[2]) is tuple and len(extra[2]) == 2 and all(type(x) is str for x in extra[2]))):
                    raise WireError("bad error reply")
                raise RemoteException(frame[2], frame[3], *extra)
            self.answer(frame)

    def answer(self, frame):
        try:
            value = self.serve(frame[0], frame[2:])
            payload = encode(("ok", frame[1], value), self.enc_other)
        except (Gone, WireError):
            raise
        except BaseException as exc:  # noqa: BLE001 - the other side gets the error as data
            try:
                name = " ".join(str(c.__name__)[:100] for c in type(exc).__mro__[:16] if c is not object)
            except BaseException:  # noqa: BLE001
                name = type(exc).__name__
            try:
                msg = str(exc)
            except BaseException:  # noqa: BLE001
                msg = "?"
            head = ("exc", frame[1], str(name)[:1700], str(msg)[:1000])
            try:  # its arguments and attributes too, those that are plain data (KeyError('x').args, e.need),
                # and the exception it was raised from (raise ... from e): its names and message
                payload = encode(head + ((_plain_or_none(tuple(exc.args)), _plain_attrs(exc), _cause(exc)),))
            except BaseException:  # noqa: BLE001 - the names and the message only
                payload = encode(head)
        write_frame(self.wfd, payload)

    def serve_forever(self):
        while True:
            self.answer(self.recv())


def _plain_or_none(value):
    try:
        encode(value)
    except BaseException:  # noqa: BLE001
        return None
    return value


def _plain_attrs(exc):
    """An exception's public attributes that are plain data (each on its own: one that is not is left out)."""
    out = {}
    for k, v in dict(getattr(exc, "__dict__", None) or {}).items():
        if type(k) is str and k[:1] != "_":
            try:
                encode(v)
            except BaseException:  # noqa: BLE001
                continue
            out[k] = v
    return out


def _cause(exc):
    cause = exc.__cause__
    if cause is None:
        return None
    try:
        return (" ".join(str(c.__name__)[:100] for c in type(cause).__mro__[:16] if c is not object)[:1700],
                str(cause)[:1000])
    except BaseException:  # noqa: BLE001
        return None


class RemoteException(Exception):
    """An exception raised on the other side, by type name and message (``chain``: its class's and its bases'
    names, as the other side said them); ``args`` None when they are not plain data; ``cause``: the names and
    message of the exception it was raised from."""

    def __init__(self, names, message, args=None, attrs=None, cause=None):
        chain = names.split()
        name = chain[0] if chain else "Exception"
        super().__init__(name, message)
        self.name, self.message, self.chain = name, message, tuple(chain)
        self.exc_args, self.attrs, self.cause = args, attrs or {}, cause
