"""A small ``pytest`` for the test process T (one job: let pytest-style task rows, KodCode's among them, run where
no pytest is installed and nothing is collected from files).

T installs this module as ``pytest`` before a test item runs, so ``import pytest`` in a test works whatever the
host has. It offers what such rows use: ``raises`` (as a context manager, with ``match``, or called),
``approx``, ``mark.parametrize`` (stacked: every combination), ``fixture`` (the item's own, plain or ``yield``;
``tmp_path``, ``tmpdir``, ``capsys``/``capfd``, ``caplog``, ``monkeypatch`` and ``request`` built in),
``warns``, ``mark.skip``/``skipif``/``xfail`` (string conditions evaluated) and other marks as no-ops,
``skip()``/``fail()``. :func:`run_test` calls a test function the way pytest would: once per parameter
combination (and fixture param), its other arguments filled from the item's fixtures; a skipped test is no pass
(an item passes by the tests that ran, and fails when none did). What the solution prints, logs and warns, and
the modules the tests patch for it, cross to its process and back (``_remote``: T's request to S).

Standalone like the rest of the harness: no raylign imports (loaded by :mod:`sandbox_harness`'s directory).
"""
import itertools
import math
import re
import sys


class Failed(AssertionError):
    """``pytest.fail()``, ``pytest.skip()`` and a ``raises`` block that did not raise."""


class Skipped(Failed):
    """A test that was skipped (a ``skip``/``skipif``/``xfail`` mark, ``pytest.skip()``, an empty parameter set):
    it checks nothing, so it is no pass; an item passes by the tests that ran (``sandbox_tester.run_collected``)."""


class ExceptionInfo:
    """What ``pytest.raises`` caught: ``.value``, ``.type``."""

    def __init__(self):
        self.value = None
        self.type = None

    def match(self, pattern):
        if not re.search(pattern, str(self.value)):
            raise AssertionError(f"pattern {pattern!r} not found in {str(self.value)!r}")
        return True


class _Raises:
    def __init__(self, expected, match=None):
        self.expected, self.pattern, self.info = expected, match, ExceptionInfo()

    def __enter__(self):
        return self.info

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            raise Failed(f"DID NOT RAISE {self.expected!r}")
        if not issubclass(exc_type, self.expected):
            return False  # another exception: it goes on
        self.info.value, self.info.type = exc, exc_type
        if self.pattern is not None:
            self.info.match(self.pattern)
        return True


def raises(expected=None, *args, match=None, expected_exception=None, **kwargs):
    """``with pytest.raises(E, match=...)``, or ``pytest.raises(E, fn, *args)``."""
    context = _Raises(expected if expected is not None else expected_exception, match)
    if not args:
        return context
    with context:
        args[0](*args[1:], **kwargs)
    return context.info


class approx:
    """A number (or a list, tuple or dict of numbers) within ``rel`` (default 1e-6) or ``abs`` (1e-12) of the
    expected one."""

    def __init__(self, expected, rel=None, abs=None, nan_ok=False):  # noqa: A002 - pytest's own names
        self.expected, self.rel, self.abs, self.nan_ok = expected, rel, abs, nan_ok

    def _close(self, got, want):
        if isinstance(want, (list, tuple)):  # (a list is not a tuple, as pytest's approx says)
            return isinstance(got, type(want)) and len(got) == len(want) and all(
                self._close(g, w) for g, w in zip(got, want))
        if isinstance(want, dict):
            return isinstance(got, dict) and got.keys() == want.keys() and all(
                self._close(got[k], want[k]) for k in want)
        import numbers  # (imported when a test compares: the sandbox's server loads this module at its start)
        if isinstance(got, bool) or isinstance(want, bool) or not isinstance(got, numbers.Number) \
                or not isinstance(want, numbers.Number):
            return got == want
        if want == got:
            return True
        if self.nan_ok and isinstance(got, float) and isinstance(want, float) and math.isnan(got) and math.isnan(want):
            return True
        if not isinstance(got, (int, float, complex)) or not isinstance(want, (int, float, complex)):
            got, want = complex(got), complex(want)  # (a Fraction, a Decimal)
        if isinstance(want, complex) or isinstance(got, complex):
            gap = abs(got - want)
        elif math.isinf(want) or math.isnan(want) or math.isnan(got):
            return False
        else:
            gap = abs(got - want)
        rel = (0.0 if self.abs is not None else 1e-6) if self.rel is None else self.rel  # (abs alone: no rel)
        tol = max(rel * abs(want), 1e-12 if self.abs is None else self.abs)
        return gap <= tol

    def __eq__(self, other):
        return self._close(other, self.expected)

    def __ne__(self, other):
        return not self.__eq__(other)

    __hash__ = None

    def __repr__(self):
        return f"approx({self.expected!r})"


def _mark_with(name, *args, **kwargs):
    def apply(fn):
        if isinstance(fn, type):  # a mark on a test class: on each of its tests (a class's __dict__ is read-only)
            fn._pytest_marks = [*fn.__dict__.get("_pytest_marks", []), (name, args, kwargs)]
        else:
            fn.__dict__.setdefault("_pytest_marks", []).append((name, args, kwargs))
        return fn
    return apply


class _Mark:
    """``pytest.mark.NAME(...)``: parametrize, skip, skipif and xfail are read; any other mark is kept unread."""

    def parametrize(self, argnames, argvalues, ids=None, indirect=False, scope=None):
        names = [n.strip() for n in argnames.split(",")] if isinstance(argnames, str) else list(argnames)
        return _mark_with("parametrize", names, list(argvalues))

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)

        def mark(*args, **kwargs):
            if len(args) == 1 and callable(args[0]) and not kwargs and name not in ("skipif",):
                return _mark_with(name)(args[0])  # @pytest.mark.slow
            return _mark_with(name, *args, **kwargs)
        return mark


mark = _Mark()


def fixture(fn=None, **kwargs):
    """``@pytest.fixture`` and ``@pytest.fixture(scope=..., autouse=...)``: a function whose value fills a test's
    argument (an ``autouse`` one runs before every test)."""
    def apply(f):
        f._pytest_fixture = True
        f._pytest_autouse = bool(kwargs.get("autouse"))
        if kwargs.get("params") is not None:  # each test that uses it runs once per param (request.param)
            f._pytest_params = list(kwargs["params"])
        return f
    return apply(fn) if callable(fn) else apply


def skip(reason="", **kwargs):
    raise Skipped(f"skipped: {reason or kwargs.get('msg', '')}")


class WarningRecord:
    """One warning ``pytest.warns`` saw: ``.message`` (a warning of its category) and ``.category``; ``names``:
    its category's class and bases, by name."""

    def __init__(self, category, text, names=None):
        self.category, self.message = category, category(text)
        self.names = names or [c.__name__ for c in category.__mro__]


class WarningsChecker(list):
    """``with pytest.warns(Category, match=...) as record``: the warnings the test and the solution issued in
    the block (the solution's recorded in its own process, by category name); one of ``Category`` must be
    among them."""

    def __init__(self, expected, match=None):
        super().__init__()
        self.expected = expected if isinstance(expected, tuple) else (expected,)
        self.pattern = match

    def __enter__(self):
        import warnings
        self._cm = warnings.catch_warnings(record=True)
        self._log = self._cm.__enter__()
        warnings.simplefilter("always")
        if _remote[0] is not None:
            _remote[0]("warnings", True)
        return self

    def __exit__(self, exc_type, exc, tb):
        import builtins
        self._cm.__exit__(None, None, None)
        theirs = _remote[0]("warnings", False) if _remote[0] is not None else []
        for w in self._log:
            self.append(WarningRecord(w.category, str(w.message)))
        for names, text in theirs if isinstance(theirs, list) else ():
            if isinstance(names, list) and names and isinstance(text, str):
                known = next((getattr(builtins, n) for n in names if isinstance(getattr(builtins, n, None), type)
                              and issubclass(getattr(builtins, n), Warning)), UserWarning)
                category = known if known.__name__ == names[0] else type(str(names[0]), (known,), {})
                self.append(WarningRecord(category, text, [n for n in names if isinstance(n, str)]))
        if exc_type is not None:
            return False
        for record in self:
            if any(getattr(e, "__name__", None) in record.names for e in self.expected) and (
                    self.pattern is None or re.search(self.pattern, str(record.message))):
                return False
        raise Failed(f"DID NOT WARN: no warnings of type {self.expected!r} were emitted")

    def pop(self, cls=Warning):
        for i, record in enumerate(self):
            if issubclass(record.category, cls):
                return super().pop(i)
        raise AssertionError(f"{cls!r} not found in warning list")


def warns(expected=Warning, *args, match=None, **kwargs):
    """``with pytest.warns(W, match=...)``, or ``pytest.warns(W, fn, *args)``."""
    checker = WarningsChecker(expected, match)
    if not args:
        return checker
    with checker:
        return args[0](*args[1:], **kwargs)


def deprecated_call(*args, **kwargs):
    return warns((DeprecationWarning, PendingDeprecationWarning), *args, **kwargs)


def fail(reason=""):
    raise Failed(str(reason))


def main(*args, **kwargs):
    """``pytest.main()`` under ``if __name__ == "__main__"``: the item's tests are run after it anyway."""
    return 0


class _Param:
    """``pytest.param(*values, id=..., marks=...)``: one parameter set."""

    def __init__(self, values):
        self.values = values


def param(*values, **kwargs):
    return _Param(values)


def _values(v):
    return v.values if isinstance(v, _Param) else v if isinstance(v, (tuple, list)) else (v,)


def _condition(cond, namespace):
    """A ``skipif``/``xfail`` condition: a string is evaluated as pytest does (with ``sys``, ``os``, ``platform``
    and the item's names)."""
    if isinstance(cond, str):
        import os
        import platform
        return bool(eval(cond, {"sys": sys, "os": os, "platform": platform, **namespace}))  # noqa: S307 - test code
    return bool(cond)


def run_test(fn, namespace, bound=None):
    """Call a test function as pytest would: for every combination of its ``parametrize`` marks, its other
    arguments filled from the fixtures of ``namespace`` (and ``tmp_path``); ``bound``: the test class's instance."""
    marks = fn.__dict__.get("_pytest_marks", []) + (getattr(type(bound), "_pytest_marks", []) if bound is not None
                                                      else [])
    cls = type(bound)
    if bound is not None and callable(getattr(cls, "setup_class", None)) and not cls.__dict__.get("_raylign_set_up"):
        hook = cls.__dict__.get("setup_class")
        hook.__func__(cls) if isinstance(hook, classmethod) else cls.setup_class(*(
            [cls] if getattr(hook, "__code__", None) is not None and hook.__code__.co_argcount else []))
        cls._raylign_set_up = True
    for name, args, kwargs in marks:
        if name == "skip" or (name == "skipif" and _condition(args[0] if args else kwargs.get("condition"),
                                                             namespace)):
            raise Skipped(f"skipped: {kwargs.get('reason', '')}")
    grids = [[dict(zip(args[0], _values(v) if len(args[0]) > 1 else (v.values[0] if isinstance(v, _Param) else v,)))
              for v in args[1]]
             for name, args, _ in marks if name == "parametrize"]
    if any(m[0] == "xfail" and (not m[1] or _condition(m[1][0], namespace)) for m in marks):
        raise Skipped("xfail: a test expected to fail checks nothing")
    code = fn.__code__
    params = list(code.co_varnames[:code.co_argcount - len(fn.__defaults__ or ())])[1 if bound is not None else 0:]
    used = [a for name, args, _ in marks if name == "usefixtures" for a in args]
    used += [n for n, f in namespace.items() if callable(f) and getattr(f, "_pytest_autouse", False)]
    scope = dict(namespace)
    if bound is not None:  # fixtures defined in the test class
        scope.update({n: getattr(bound, n) for n in dir(type(bound))
                      if getattr(getattr(type(bound), n, None), "_pytest_fixture", False)})
    for p in params:  # a fixture with params: the test runs once per param (its request.param)
        f = scope.get(p)
        if p not in {k for grid in grids for row in grid for k in row} and getattr(f, "_pytest_fixture", False) \
                and getattr(f, "_pytest_params", None) is not None:
            grids.append([{_PARAM: {p: v}} for v in f._pytest_params])
    if any(not grid for grid in grids):
        raise Skipped("got an empty parameter set")  # (pytest skips it: no test ran)
    for combination in itertools.product(*grids) if grids else [()]:
        given, fparams = {}, {}
        for part in combination:
            fparams.update(part.get(_PARAM, {}))
            given.update({k: v for k, v in part.items() if k != _PARAM})
        teardown = []
        try:
            for p in used + [n for n, f in scope.items() if getattr(f, "_pytest_autouse", False) and n not in used]:
                _fixture_value(p, scope, teardown, fparams=fparams)
            for p in params:
                if p not in given:
                    given[p] = _fixture_value(p, scope, teardown, fparams=fparams)
            target = fn.__get__(bound) if bound is not None else fn
            target(**{p: given[p] for p in params})
        finally:
            for gen in reversed(teardown):
                for _ in gen:  # a yield fixture's code after its yield
                    break


# ---------------------------------------------------------------------------------------- built-in fixtures
# capsys and monkeypatch reach the solution's process S through T's request to it (``install`` sets it): what
# the solution prints while a test runs, and the modules it uses (``builtins.input``, ``sys.stdin``, its globals)

_remote = [None]
_NOTSET = object()


class CaptureResult(tuple):
    """``capsys.readouterr()``: ``(out, err)``, also as ``.out`` and ``.err``."""

    __slots__ = ()

    def __new__(cls, out, err):
        return tuple.__new__(cls, (out, err))

    out = property(lambda self: self[0])
    err = property(lambda self: self[1])


class CaptureFixture:
    """``capsys``/``capfd`` (and their ``binary`` forms): what is printed while the test runs. The test's
    ``sys.stdout``/``sys.stderr`` become buffers; T writes into them what the solution prints during each of
    its calls while they are redirected (as any redirection of T's streams: ``redirect_stdout``,
    ``sys.stdout = io.StringIO()``, ``mock.patch("sys.stdout", ...)``)."""

    def __init__(self, binary=False):
        import io
        self._binary = binary
        self._saved = sys.stdout, sys.stderr
        self._out, self._err = io.StringIO(), io.StringIO()
        sys.stdout, sys.stderr = self._out, self._err
        self._on = True

    def readouterr(self):
        out, err = self._out.getvalue(), self._err.getvalue()
        for buf in (self._out, self._err):
            buf.seek(0)
            buf.truncate()
        if self._binary:
            out, err = out.encode(), err.encode()
        return CaptureResult(out, err)

    def close(self):
        if self._on:
            self._on = False
            sys.stdout, sys.stderr = self._saved

    def disabled(self):
        import contextlib

        @contextlib.contextmanager
        def off():
            was = sys.stdout, sys.stderr
            sys.stdout, sys.stderr = self._saved
            try:
                yield
            finally:
                sys.stdout, sys.stderr = was
        return off()


def _resolve(path):
    """pytest's ``"module.attr"`` target: the longest importable module prefix, then attributes."""
    import importlib
    parts = path.split(".")
    for i in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for part in parts[i:-1]:
            obj = getattr(obj, part)
        return obj, parts[-1]
    raise AttributeError(f"monkeypatch: cannot import a module of {path!r}")


class MonkeyPatch:
    """``monkeypatch``: attribute, item, environment and path changes undone when the test ends. A change to a
    module (``"builtins.input"``, ``sys.stdin``, ``solution.helper``) is made in the solution's process too, so
    the solution's code sees it (a StringIO crosses as its text, a function as a call back to the test's)."""

    def __init__(self):
        self._undo, self._remote_changed = [], 0  # (changes made in the solution's process too)

    @classmethod
    def context(cls):
        import contextlib

        @contextlib.contextmanager
        def ctx():
            mp = cls()
            try:
                yield mp
            finally:
                mp.undo()
        return ctx()

    def _forward(self, kind, *args):
        if _remote[0] is None:
            return
        try:
            _remote[0](kind, *args)
            self._remote_changed += 1
        except Exception as exc:  # noqa: BLE001 - a value that cannot cross stays the test's own
            if type(exc).__name__ in ("Gone", "WireError"):
                raise

    def _to_module(self, target, name, how, value=None):
        import io
        import types
        if isinstance(target, types.ModuleType) and not target.__name__.startswith("sandbox_") and not (
                target is sys and name in ("stdout", "stderr")):  # (T's own streams: the solution's prints
            # reach a redirected one by the calls themselves, see CaptureFixture)
            if how == "set" and isinstance(value, io.StringIO):
                how, value = "text", value.getvalue()
            self._forward("patch", target.__name__, name, how, value)

    def setattr(self, target, name, value=_NOTSET, raising=True):
        if value is _NOTSET:
            if not isinstance(target, str):
                raise TypeError("monkeypatch.setattr(target, value) takes a 'module.attr' string target")
            value = name
            target, name = _resolve(target)
        old = getattr(target, name, _NOTSET)
        if old is _NOTSET and raising:
            raise AttributeError(f"{target!r} has no attribute {name!r}")
        setattr(target, name, value)
        self._undo.append(("attr", target, name, old))
        self._to_module(target, name, "set", value)

    def delattr(self, target, name=_NOTSET, raising=True):
        if name is _NOTSET:
            target, name = _resolve(target)
        if not hasattr(target, name):
            if raising:
                raise AttributeError(name)
            return
        self._undo.append(("attr", target, name, getattr(target, name)))
        delattr(target, name)
        self._to_module(target, name, "del")

    def setitem(self, dic, name, value):
        self._undo.append(("item", dic, name, dic.get(name, _NOTSET)))
        dic[name] = value

    def delitem(self, dic, name, raising=True):
        if name not in dic:
            if raising:
                raise KeyError(name)
            return
        self._undo.append(("item", dic, name, dic[name]))
        del dic[name]

    def setenv(self, name, value, prepend=None):
        import os
        value = str(value)
        if prepend and name in os.environ:
            value = value + prepend + os.environ[name]
        self.setitem(os.environ, name, value)
        self._forward("env", name, value)

    def delenv(self, name, raising=True):
        import os
        self.delitem(os.environ, name, raising=raising)
        self._forward("env", name, None)

    def syspath_prepend(self, path):
        self._undo.append(("path", list(sys.path), None, None))
        sys.path.insert(0, str(path))

    def chdir(self, path):
        import os
        self._undo.append(("cwd", os.getcwd(), None, None))
        os.chdir(path)

    def undo(self):
        import os
        while self._undo:
            kind, target, name, old = self._undo.pop()
            if kind == "attr":
                if old is _NOTSET:
                    try:
                        delattr(target, name)
                    except AttributeError:
                        pass
                else:
                    setattr(target, name, old)
            elif kind == "item":
                if old is _NOTSET:
                    target.pop(name, None)
                else:
                    target[name] = old
            elif kind == "path":
                sys.path[:] = target
            else:
                os.chdir(target)
        if self._remote_changed:
            n, self._remote_changed = self._remote_changed, 0
            _remote[0]("unpatch", n)


def forward_random_seed():
    """``random.seed(n)`` in a test seeds the solution's ``random`` too (its process has its own): a test that
    seeds, then has the solution draw, then seeds again and draws the expected values itself, passes as in
    one process."""
    import random
    if getattr(random.seed, "_raylign_forwarded", False):
        return
    seed = random.seed

    def forwarded(*args, **kwargs):
        seed(*args, **kwargs)
        if _remote[0] is not None:
            try:
                _remote[0]("seed", args, kwargs)
            except Exception:  # noqa: BLE001 - a seed that cannot cross (an object): the test's own only
                pass
    forwarded._raylign_forwarded = True
    random.seed = forwarded


def forward_mock_patches():
    """``unittest.mock.patch`` (and ``patch.object``) of a module's attribute: made in the solution's process
    too while the patch is active, like ``monkeypatch`` (``patch("builtins.input", return_value="4")``: the
    solution's ``input()`` calls the test's mock)."""
    from unittest import mock
    cls = mock._patch
    if cls.__dict__.get("_raylign_forwarded"):
        return
    enter, leave = cls.__enter__, cls.__exit__

    def __enter__(self):
        new = enter(self)
        mp = MonkeyPatch()
        target = getattr(self, "target", None)
        if target is not None and hasattr(target, self.attribute):
            mp._to_module(target, self.attribute, "set", getattr(target, self.attribute))
        self.__dict__.setdefault("_raylign_mps", []).append(mp)
        return new

    def __exit__(self, *exc_info):
        try:
            return leave(self, *exc_info)
        finally:
            mps = self.__dict__.get("_raylign_mps")
            if mps:
                mps.pop().undo()
    cls.__enter__, cls.__exit__, cls._raylign_forwarded = __enter__, __exit__, True


def _their_records():
    """The solution's log records since it started listening, as LogRecords of T's."""
    import logging
    got = _remote[0]("logs", "read") if _remote[0] is not None else []
    out = []
    for item in got if isinstance(got, list) else ():
        if isinstance(item, tuple) and len(item) == 4 and isinstance(item[0], str) and isinstance(item[1], int) \
                and isinstance(item[2], str) and isinstance(item[3], str):
            out.append(logging.makeLogRecord({"name": item[0], "levelno": item[1], "levelname": item[2],
                                              "msg": item[3], "args": None, "filename": "solution.py"}))
    return out


class LogCaptureFixture:
    """``caplog``: the log records of the test and of the solution (recorded in its process) while the test
    runs: ``records``, ``messages``, ``text``, ``record_tuples``, ``set_level``, ``at_level``, ``clear``."""

    def __init__(self):
        import logging

        class Keep(logging.Handler):
            def __init__(self):
                super().__init__(0)
                self.records = []

            def emit(self, record):
                self.records.append(record)
        self._handler = Keep()
        logging.getLogger().addHandler(self._handler)
        self._levels = []
        if _remote[0] is not None:
            _remote[0]("logs", "start")

    @property
    def records(self):
        return self._handler.records + _their_records()

    @property
    def messages(self):
        return [r.getMessage() for r in self.records]

    @property
    def record_tuples(self):
        return [(r.name, r.levelno, r.getMessage()) for r in self.records]

    @property
    def text(self):
        return "".join(f"{r.levelname:<8} {r.name}:{r.filename}:{r.lineno} {r.getMessage()}\n" for r in self.records)

    def clear(self):
        self._handler.records.clear()
        if _remote[0] is not None:
            _remote[0]("logs", "clear")

    def set_level(self, level, logger=None):
        import logging
        level = logging._checkLevel(level)
        lg = logging.getLogger(logger)
        self._levels.append((lg, lg.level))
        lg.setLevel(level)
        if _remote[0] is not None:
            _remote[0]("logs", "level", level, logger)

    def at_level(self, level, logger=None):
        import contextlib

        @contextlib.contextmanager
        def ctx():
            self.set_level(level, logger)
            yield self
        return ctx()

    def close(self):
        import logging
        logging.getLogger().removeHandler(self._handler)
        for lg, level in reversed(self._levels):
            lg.setLevel(level)
        if _remote[0] is not None:
            _remote[0]("logs", "stop")


def forward_assert_logs():
    """``self.assertLogs(...)``: the solution's log records in the block count, recorded in its process."""
    import importlib
    cls = None
    for where in ("unittest._log", "unittest.case"):  # (3.9+: _log)
        try:
            cls = getattr(importlib.import_module(where), "_AssertLogsContext", None)
        except ImportError:
            continue
        if cls is not None:
            break
    if cls is None or cls.__dict__.get("_raylign_forwarded"):
        return
    enter, leave = cls.__enter__, cls.__exit__

    def __enter__(self):
        got = enter(self)
        if _remote[0] is not None:
            _remote[0]("logs", "start")
            _remote[0]("logs", "level", self.level, self.logger_name)
        return got

    def __exit__(self, exc_type, exc, tb):
        if _remote[0] is not None:
            want = self.logger_name
            for record in _their_records():
                if record.levelno >= self.level and (not want or record.name == want
                                                     or record.name.startswith(want + ".")):
                    self.watcher.records.append(record)
                    self.watcher.output.append(f"{record.levelname}:{record.name}:{record.getMessage()}")
            _remote[0]("logs", "stop")
        return leave(self, exc_type, exc, tb)
    cls.__enter__, cls.__exit__, cls._raylign_forwarded = __enter__, __exit__, True


class LocalPath:
    """``tmpdir``'s path (py.path.local's common methods): ``join``, ``write``, ``read``, ``mkdir``, ``ensure``,
    ``strpath``; ``str()`` and ``os.fspath()`` give the path."""

    def __init__(self, path):
        import os
        self.strpath = os.path.abspath(os.fspath(path))

    def __fspath__(self):
        return self.strpath

    def __str__(self):
        return self.strpath

    def __repr__(self):
        return f"local({self.strpath!r})"

    def __eq__(self, other):
        import os
        try:
            return os.fspath(other) == self.strpath
        except TypeError:
            return NotImplemented

    def __hash__(self):
        return hash(self.strpath)

    def __truediv__(self, other):
        return self.join(other)

    def join(self, *parts):
        import os
        return LocalPath(os.path.join(self.strpath, *map(str, parts)))

    @property
    def basename(self):
        import os
        return os.path.basename(self.strpath)

    def dirpath(self):
        import os
        return LocalPath(os.path.dirname(self.strpath))

    def exists(self):
        import os
        return os.path.exists(self.strpath)

    check = exists

    def isdir(self):
        import os
        return os.path.isdir(self.strpath)

    def isfile(self):
        import os
        return os.path.isfile(self.strpath)

    def write(self, data, mode="w"):
        if isinstance(data, bytes) and "b" not in mode:
            mode += "b"
        with open(self.strpath, mode) as f:
            f.write(data)

    write_text = write

    def write_binary(self, data):
        self.write(data, "wb")

    def read(self, mode="r"):
        with open(self.strpath, mode) as f:
            return f.read()

    def read_text(self, encoding="utf-8"):
        with open(self.strpath, encoding=encoding) as f:
            return f.read()

    def read_binary(self):
        return self.read("rb")

    def readlines(self, cr=True):
        with open(self.strpath) as f:
            return f.readlines() if cr else f.read().splitlines()

    def mkdir(self, *parts):
        import os
        p = self.join(*parts)
        os.mkdir(p.strpath)
        return p

    def ensure(self, *parts, dir=False):  # noqa: A002 - py.path's own name
        import os
        p = self.join(*parts)
        if dir:
            os.makedirs(p.strpath, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(p.strpath), exist_ok=True)
            open(p.strpath, "a").close()
        return p

    def listdir(self):
        import os
        return [self.join(n) for n in sorted(os.listdir(self.strpath))]

    def remove(self):
        import os
        import shutil
        shutil.rmtree(self.strpath) if os.path.isdir(self.strpath) else os.remove(self.strpath)


def _shared_dir():
    import os
    import tempfile
    path = tempfile.mkdtemp(prefix="t")
    os.chmod(path, 0o1777)  # (the solution runs as another user: it adds files there; sticky, as /tmp: it
    return path  # cannot remove or replace the test's own)


def _builtin(name):
    """A generator for a built-in fixture (its value, then its teardown), or None."""
    def capture(binary):
        cap = CaptureFixture(binary)
        try:
            yield cap
        finally:
            cap.close()

    def monkeypatch():
        mp = MonkeyPatch()
        try:
            yield mp
        finally:
            mp.undo()
    if name in ("capsys", "capfd"):
        return capture(False)
    if name in ("capsysbinary", "capfdbinary"):
        return capture(True)
    if name == "monkeypatch":
        return monkeypatch()
    if name == "caplog":
        def caplog():
            cap = LogCaptureFixture()
            try:
                yield cap
            finally:
                cap.close()
        return caplog()
    if name in ("tmpdir", "tmp_path"):
        def path():
            import pathlib
            yield LocalPath(_shared_dir()) if name == "tmpdir" else pathlib.Path(_shared_dir())
        return path()
    return None


_PARAM = object()  # (a parameter-grid entry holding fixture params)


class _Request:
    """The ``request`` fixture: ``request.param`` of a fixture with params."""

    def __init__(self, param, name):
        self.param, self.fixturename = param, name

    def addfinalizer(self, fn):
        self._finalizers.append(fn)


def _fixture_value(name, namespace, teardown, depth=0, fparams=None, owner=None):
    if name == "request" and not getattr(namespace.get(name), "_pytest_fixture", False):
        request = _Request((fparams or {}).get(owner), owner)
        request._finalizers = []

        def finalize():
            yield request
            for fn in reversed(request._finalizers):
                fn()
        gen = finalize()
        teardown.append(gen)
        return next(gen)
    own = namespace.get(name)
    if not (callable(own) and getattr(own, "_pytest_fixture", False)):  # (a fixture of the item's own wins)
        gen = _builtin(name)
        if gen is not None:
            value = next(gen)
            teardown.append(gen)
            return value
    fn = namespace.get(name)
    if depth > 20 or not callable(fn) or not getattr(fn, "_pytest_fixture", False):
        raise TypeError(f"no fixture {name!r} here")
    code = getattr(fn, "__func__", fn).__code__
    names = code.co_varnames[:code.co_argcount][1 if hasattr(fn, "__self__") else 0:]
    args = {p: _fixture_value(p, namespace, teardown, depth + 1, fparams, name) for p in names}
    value = fn(**args)
    if code.co_flags & 0x20:  # a generator: a yield fixture
        gen = value
        value = next(gen)
        teardown.append(gen)
    return value


def install(remote=None):
    """This module as ``pytest`` for the test items; ``remote``: T's request to the solution's process (for
    ``capsys`` and ``monkeypatch``)."""
    _remote[0] = remote
    sys.modules["pytest"] = sys.modules[__name__]
