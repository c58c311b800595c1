"""Tests of user-defined functions (`@sluice.udf`, `sluice.udfs.call`).
Run with `python3 -m unittest discover -s sdk/python/tests` or `pytest sdk/python/tests`."""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import sluice  # noqa: E402
from sluice import udfs  # noqa: E402


@sluice.udf
def add(a, b):
    return a + b


def plain(x):
    return x


class UdfTest(unittest.TestCase):
    def test_the_decorator_marks_the_function_and_returns_it(self):
        self.assertTrue(udfs.is_udf(add))
        self.assertFalse(udfs.is_udf(plain))
        self.assertEqual(add(1, 2), 3)

    def test_a_call_spreads_the_json_array_and_writes_the_result_as_json(self):
        self.assertEqual(udfs.call(add, b"[1, 2]"), b"3")
        self.assertEqual(udfs.call(add, b'["a", "b"]'), b'"ab"')
        self.assertEqual(udfs.call(add, b'[[1], [2, {"k": null}]]'), b'[1,2,{"k":null}]')

    def test_each_failure_is_a_udf_error_saying_what_failed(self):
        cases = [
            (b"{}", "the arguments are not a JSON array"),
            (b"[1,", "the arguments are not JSON: "),
            (b"[1]", "TypeError: add() missing 1 required positional argument: 'b'"),
            (b'[1, "x"]', "TypeError: unsupported operand type(s) for +: 'int' and 'str'"),
            (b"[1e308, 1e308]", "the result cannot be written as JSON: "),
        ]
        for args, says in cases:
            with self.assertRaises(udfs.UdfError, msg=args) as e:
                udfs.call(add, args)
            self.assertTrue(str(e.exception).startswith(says), f"{args!r}: {e.exception}")


if __name__ == "__main__":
    unittest.main()
