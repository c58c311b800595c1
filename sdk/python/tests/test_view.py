"""Tests of the zero-copy JSON view (sluice.view), run natively."""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import sluice  # noqa: E402
from sluice import JsonError, JsonView, ObjectWriter  # noqa: E402
from sluice.view import MAX_DEPTH  # noqa: E402
from sluice.testing import run  # noqa: E402


class Splice(sluice.Transform):
    """Copies the input object minus `drop`, `ts` renamed, plus new fields."""

    def process(self, event, out):
        view = event.view()
        if not view.is_object():
            raise sluice.Reject("expected a JSON object")
        w = ObjectWriter()
        w.copy_from(view, drop=("drop",), rename={"ts": "time"})
        w.value("big", 2**64 - 1)
        w.value('new "q"', {"b": 1, "a": [True]})
        inner = w.object("nested")
        inner.raw("copy", view["id"])
        inner.finish()
        out.emit(w.finish())


class ViewTest(unittest.TestCase):
    def test_reads_by_name_and_path_with_raw_text_last_duplicate_wins(self):
        v = JsonView.parse(b'{"a":1,"b":{"c":[10,{"d":"x\\u00e9"}],"c":{"e":true}},"a":9007199254740993, "p":1.50 }')
        self.assertTrue(v.is_object())
        self.assertEqual(len(v), 4)
        self.assertEqual(v.get("a").text, "9007199254740993")
        self.assertEqual(v.get("a").as_int(), 9007199254740993)
        self.assertEqual(v.get("p").text, "1.50")
        self.assertEqual(v.get("p").as_float(), 1.5)
        self.assertIsNone(v.get("p").as_int())
        self.assertIs(v.path("b.c.e").as_bool(), True)  # the second "c" wins
        self.assertIsNone(v.path("b.c.0"))
        self.assertIsNone(v.get("missing"))
        self.assertNotIn("missing", v)
        self.assertEqual([k.text for k, _ in v.get("b").entries()], ["c", "c"])
        arr = JsonView.parse('[10,{"d":"x\\u00e9"}]')
        self.assertEqual(arr.path("1.d").as_str(), "xé")
        self.assertEqual(arr.path("1.d").text, '"x\\u00e9"')
        self.assertEqual(arr.path(["0"]).as_int(), 10)
        self.assertEqual([r.kind for r in arr.root.items()], ["number", "object"])
        self.assertEqual(v.get("b").to_json(), {"c": {"e": True}})
        esc = JsonView.parse('{"caf\\u00e9":1,"café":2,"q\\"":3}')
        self.assertEqual(esc.get("café").text, "2")
        self.assertEqual(esc.get('q"').text, "3")
        self.assertTrue(esc.key(0).escaped and esc.key(0).is_("café"))

    def test_refuses_hostile_and_broken_input_with_a_reason(self):
        deep = MAX_DEPTH + 1
        cases = [
            (b"", "EOF while parsing a value"),
            (b'{"a":', "EOF while parsing a value"),
            (b'{"a":1', "EOF while parsing an object"),
            (b'{"a":"x', "EOF while parsing a string"),
            (b"[1,2", "EOF while parsing a list"),
            (b'{"a":1}x', "trailing characters"),
            (b"{a:1}", "key must be a string"),
            (b"[01]", "expected `,` or `]`"),
            (b"[1.]", "invalid number"),
            (b"-", "invalid number"),
            (b'"\\x"', "invalid escape"),
            (b'"\\ud800"', "lone surrogate in hex escape"),
            (b'"\\udc00x"', "lone surrogate in hex escape"),
            (b'"a\nb"', "control character in string"),
            (b"tru", "expected a value"),
            (b"[" * deep + b"]" * deep, "recursion limit exceeded"),
            (b'{"a":' + b"[" * MAX_DEPTH + b"]" * MAX_DEPTH + b"}", "recursion limit exceeded"),
            (b"[" * 100000, "recursion limit exceeded"),
            (b'"\xff"', "invalid UTF-8"),
            (b'"\xc0\xaf"', "invalid UTF-8"),
            (b'"\xed\xa0\x80"', "invalid UTF-8"),
            (b'"\xe2\x82"', "invalid UTF-8"),
            (b'"\xf4\x90\x80\x80"', "invalid UTF-8"),
        ]
        for data, reason in cases:
            with self.subTest(data=data[:20]):
                with self.assertRaises(JsonError) as cm:
                    JsonView.parse(data)
                self.assertEqual(cm.exception.reason, reason)
        self.assertEqual(JsonView.parse(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH).root.kind, "array")
        self.assertEqual(JsonView.parse('"\\ud83d\\ude00"').root.as_str(), "😀")
        huge = "1" + "0" * 400
        self.assertEqual(JsonView.parse('{"n":%s}' % huge).get("n").text, huge)
        self.assertEqual(JsonView.parse('{"n":%s}' % huge).get("n").as_int(), 10**400)

    def test_event_view_and_writer_splice_raw_slices(self):
        out = run(
            Splice,
            [
                '{"id":9007199254740993,"drop":1,"ts":"2020","p":1.50,"id":18446744073709551615}',
                b'{"\xff":1}',
                "[1,",
                "[1]",
            ],
        )
        self.assertEqual(
            out.values(),
            [
                '{"time":"2020","p":1.50,"id":18446744073709551615,"big":18446744073709551615,'
                '"new \\"q\\"":{"a":[true],"b":1},"nested":{"copy":18446744073709551615}}'
            ],
        )
        self.assertEqual(
            out.rejected(),
            [
                (1, "value is not valid JSON: invalid UTF-8 at byte 2"),
                (2, "value is not valid JSON: EOF while parsing a value at byte 3"),
                (3, "expected a JSON object"),
            ],
        )
        self.assertEqual(ObjectWriter().finish(), b"{}")

    def test_fast_index_agrees_with_the_validating_scanner(self):
        from sluice import view

        inputs = [
            b'{"a":1,"b":[1,{"c":"\xc3\xa9"}],"caf\xc3\xa9":"\\u00e9\\n","d":{"e":null}}',
            b' { "a" : 1.50e-3 , "b" : true , "a" : "x" } ',
            b"{}",
            b" [1, 2] ",
            b'"str"',
            b'{"n":1e400,"m":-0,"big":18446744073709551615}',
        ]
        for data in inputs:
            with self.subTest(data=data):
                fast, slow = [], []
                self.assertTrue(view._fast_index(data, fast))
                scanner = view._Scanner(data)
                scanner.ws()
                if data.strip().startswith(b"{"):
                    scanner.object(1, slow)
                self.assertEqual(fast, slow)
        # What the fast path cannot decide goes to the scanner for a reason.
        for data in [b'{"a":1.}', b'{"a":NaN}', b'"\\ud800"', b"[" * 200, b'{"a":01}', b'{"a":1} x']:
            self.assertFalse(view._fast_index(data, []), data)

    def test_tree_api_keeps_64_bit_integers(self):
        value = sluice.loads(b'{"id":9007199254740993,"max":18446744073709551615,"min":-9223372036854775808}')
        self.assertEqual(
            sluice.dumps(value), b'{"id":9007199254740993,"max":18446744073709551615,"min":-9223372036854775808}'
        )


if __name__ == "__main__":
    unittest.main()
