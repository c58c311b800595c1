"""Tests of the sluice Python SDK, run natively: `python -m unittest discover -s sdk/python/tests`."""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import sluice  # noqa: E402
from sluice.testing import TestEvent, run  # noqa: E402


class Echo(sluice.Transform):
    """Emits each JSON value back, or a fixed error chosen by the value."""

    def process(self, event, out):
        if event.is_tombstone:
            out.forward()
            return
        value = event.json()
        if value == "retry":
            raise sluice.Retry("later")
        if value == "fatal":
            raise sluice.Fatal("broken")
        if value == "half":
            out.emit_json("first")  # withdrawn by the Reject below
            raise sluice.Reject("half done")
        out.emit_json(value)


class Options(sluice.Transform):
    def __init__(self, params):
        params.only("name", "flag", "n", "spec")
        self.name = params.required("name")
        self.flag = params.bool("flag", False)
        self.n = params.int("n", 1)
        self.spec = params.json("spec", {})

    def process(self, event, out):
        out.emit_json([self.name, self.flag, self.n, self.spec])


class Headers(sluice.Transform):
    def process(self, event, out):
        out.forward()
        out.emit(b"raw", key=None, headers=[("h", "v")], timestamp_ms=7)
        out.emit(event.header("trace") or b"none")
        out.tombstone()


class SerializationTest(unittest.TestCase):
    def test_is_compact_sorted_and_keeps_unicode_and_integers(self):
        value = {"b": 1, "a": {"z": [1, 2.5, None, True], "é": "ü\t\"\\"}, "A": 10**20}
        self.assertEqual(
            sluice.dumps(value),
            '{"A":100000000000000000000,"a":{"z":[1,2.5,null,true],"é":"ü\\t\\"\\\\"},"b":1}'.encode(),
        )

    def test_sorts_keys_as_utf8_bytes_would(self):
        keys = ["z", "é", "\U0001f600", "\uffff", "A", ""]
        out = sluice.dumps(dict.fromkeys(keys, 0)).decode()
        order = sorted(keys, key=lambda k: k.encode("utf-8"))
        self.assertEqual(out, "{" + ",".join(f'"{k}":0' for k in order) + "}")

    def test_escapes_control_characters_in_lowercase_hex(self):
        self.assertEqual(sluice.dumps("\x01\x1f\x7f"), b'"\\u0001\\u001f\x7f"')

    def test_refuses_nan(self):
        with self.assertRaises(ValueError):
            sluice.dumps(float("nan"))

    def test_parsing_refuses_what_json_does_not_have(self):
        for text in ["NaN", "[Infinity]", "1e400", '"\\ud800"', b"\xff", "[1,]"]:
            with self.subTest(text=text), self.assertRaises(ValueError):
                sluice.loads(text)
        self.assertEqual(sluice.loads('"\\ud83d\\ude00"'), "\U0001f600")


class BatchLoopTest(unittest.TestCase):
    def test_forwards_tombstones_and_emits_json(self):
        out = run(Echo, ['{"b":1,"a":2}', None, "3"])
        self.assertEqual(out.values(), ['{"a":2,"b":1}', None, "3"])
        self.assertEqual(out.parents(), [0, 1, 2])

    def test_rejects_invalid_json_with_the_reason(self):
        out = run(Echo, ["{", '"ok"'])
        self.assertEqual(out.values(), ['"ok"'])
        [(index, reason)] = out.rejected()
        self.assertEqual(index, 0)
        self.assertTrue(reason.startswith("value is not valid JSON: "), reason)

    def test_withdraws_what_a_rejected_event_emitted(self):
        out = run(Echo, ['"a"', '"half"', '"b"'])
        self.assertEqual(out.values(), ['"a"', '"b"'])
        self.assertEqual(out.parents(), [0, 2])
        self.assertEqual(out.rejected(), [(1, "half done")])
        self.assertEqual(out.raw.events.data, b'"a""b"')

    def test_retry_and_fatal_fail_the_whole_call(self):
        with self.assertRaises(sluice.Retry):
            run(Echo, ['"x"', '"retry"'])
        with self.assertRaises(sluice.Fatal):
            run(Echo, ['"fatal"'])

    def test_outputs_copy_key_headers_and_timestamp_unless_overridden(self):
        ev = TestEvent('"v"', key="k", headers=[("trace", b"t-1")], timestamp_ms=42)
        out = run(Headers, [ev])
        self.assertEqual(out.values(), ['"v"', "raw", "t-1", None])
        self.assertEqual(out.keys(), [b"k", None, b"k", b"k"])
        self.assertEqual(
            out.headers(),
            [[("trace", b"t-1")], [("h", b"v")], [("trace", b"t-1")], [("trace", b"t-1")]],
        )
        self.assertEqual(out.timestamps(), [42, 7, 42, 42])

    def test_event_accessors(self):
        seen = []

        class Look(sluice.Transform):
            def process(self, event, out):
                seen.append((event.index, event.key, event.value, event.text(), event.stream))

        run(Look, [TestEvent("{}", key=b"\x00k"), None])
        self.assertEqual(seen, [(0, b"\x00k", b"{}", "{}", "test"), (1, None, None, None, "test")])


class ParamsTest(unittest.TestCase):
    def test_typed_accessors(self):
        out = run(Options, ["1"], params={"name": "x", "flag": "true", "n": "3", "spec": '{"a":[1]}'})
        self.assertEqual(out.json(), [["x", True, 3, {"a": [1]}]])

    def test_errors_name_the_parameter(self):
        cases = [
            ({}, "parameter `name` is required"),
            ({"name": "x", "flag": "yes"}, "parameter `flag`: expected `true` or `false`, found `yes`"),
            ({"name": "x", "n": "three"}, "parameter `n`: expected an integer, found `three`"),
            ({"name": "x", "spec": "{"}, "parameter `spec`: expected JSON"),
            ({"name": "x", "nmae": "y"}, "unknown parameter `nmae`; allowed: name, flag, n, spec"),
        ]
        for params, message in cases:
            with self.subTest(params=params), self.assertRaises(sluice.ParamError) as e:
                run(Options, [], params=params)
            self.assertTrue(str(e.exception).startswith(message), str(e.exception))

    def test_the_default_transform_accepts_no_parameters(self):
        with self.assertRaisesRegex(sluice.ParamError, "unknown parameter `x`; allowed: none"):
            run(Echo, [], params={"x": "1"})

    def test_mapping_behaviour(self):
        p = sluice.Params([("a", "1"), ("b", "2")])
        self.assertEqual((p["a"], "b" in p, "c" in p, list(p), len(p)), ("1", True, False, ["a", "b"], 2))
        self.assertEqual(dict(p.items()), {"a": "1", "b": "2"})


class DescribeExceptionTest(unittest.TestCase):
    def test_names_type_message_and_line(self):
        try:
            {}["price"]
        except KeyError as e:
            text = sluice.describe_exception(e)
        self.assertRegex(text, r"^plugin raised KeyError: 'price' \(test_sdk.py line \d+, in test_names_type_message_and_line\)$")


if __name__ == "__main__":
    unittest.main()
