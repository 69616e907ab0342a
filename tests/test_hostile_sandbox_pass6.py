"""Honest and hostile programs against the code sandbox, sixth pass: the solution's own exception classes, which
a test catches by name (``except InvalidInput:``, ``assertRaises(InvalidInput, ...)``) or through the builtin
exception they derive from (``except ValueError:`` for ``class InvalidInput(ValueError)``): before, T knew the
solution's class only as a handle (``except`` raised TypeError) and its exceptions as T's ``SolutionError``, so a
correct solution failed. Real namespaces, cgroups and processes, no mocks.
"""
from __future__ import annotations

import pytest

from raylign.verifiers.code.sandbox_tester import test_names as names_of_tests

# the first pass's module fixtures (``ns``: the namespaces backend, ``verifier``: a CodeVerifier on it)
from test_hostile_sandbox import assert_no_traces, ns, verifier  # noqa: F401

ERRORS = """
class InvalidInput(ValueError):
    pass
class NegativeInput(InvalidInput):
    pass
class Zero(Exception):
    pass
def f(x):
    if x < 0:
        raise NegativeInput("negative")
    if x == 0:
        raise Zero("zero")
    return 2 * x
"""
NO_RAISE = ERRORS.replace('raise NegativeInput("negative")', "return -1")  # wrong: never raises
RENAMED = ERRORS.replace("Zero", "Nil")  # raises an exception of another name than the tests expect


def expect(name, call="f(-1)"):
    return f"try:\n    {call}\nexcept {name}:\n    pass\nelse:\n    raise AssertionError('no exception')"


UNITTEST = """import unittest
class T(unittest.TestCase):
    def test(self):
        self.assertRaises(NegativeInput, f, -1)
        with self.assertRaisesRegex(InvalidInput, "neg"):
            f(-2)
result = unittest.TextTestRunner(stream=open("/dev/null", "w")).run(
    unittest.defaultTestLoader.loadTestsFromTestCase(T))
assert result.wasSuccessful()"""


@pytest.mark.parametrize("completion,test,reward", [
    (ERRORS, expect("InvalidInput"), 1.0),  # the base class of what f raised
    (ERRORS, "try:\n    f(-1)\nexcept NegativeInput as e:\n    assert str(e) == 'negative'\nelse:\n    assert False", 1.0),
    (ERRORS, expect("ValueError"), 1.0),  # the builtin the solution's class derives from
    (ERRORS, expect("(KeyError, NegativeInput)"), 1.0),
    (ERRORS, expect("Zero", "f(0)"), 1.0),
    (ERRORS, UNITTEST, 1.0),
    (ERRORS, "assert f(2) == 4\n" + expect("InvalidInput", "f(-3)"), 1.0),
    (ERRORS, expect("ValueError", "f(0)"), 0.0),  # Zero is no ValueError
    (ERRORS, expect("NegativeInput", "f(0)"), 0.0),  # nor a NegativeInput: it fails the test with its own name
    (NO_RAISE, expect("InvalidInput"), 0.0),
    (NO_RAISE, UNITTEST, 0.0),
    (RENAMED, expect("Zero", "f(0)"), 0.0),  # the tests' name is not defined by the solution
])
def test_the_solutions_exception_classes_are_caught_by_name(verifier, completion, test, reward):
    """Layers: ``sandbox_tester.test_names`` (``caught``), T's classes for them, and the exception's class chain
    on the wire (``sandbox_wire.Endpoint.answer``)."""
    v = verifier(completion, {"tests": [test]})
    assert (v.status, v.reward) == ("ok", reward), v
    if reward == 0.0 and completion is ERRORS:
        assert v.details["failures"][0]["reason"] in ("Zero", "assertion")
    assert_no_traces()


def test_caught_names_are_the_exception_classes_the_tests_expect_and_do_not_define():
    caught = names_of_tests([
        "try:\n    f(1)\nexcept (A, KeyError):\n    pass", "try:\n    f(1)\nexcept B as e:\n    pass",
        "with pytest.raises(C):\n    f(1)", "self.assertRaises(D, f, 1)", "assertRaisesRegex(E, 'x')",
        "class Own(Exception):\n    pass\ntry:\n    f(1)\nexcept Own:\n    pass", "try:\n    f(1)\nexcept mod.F:\n    pass",
        "try:\n    f(1)\nexcept:\n    pass"])[4]
    assert caught == ["A", "B", "C", "D", "E"]
