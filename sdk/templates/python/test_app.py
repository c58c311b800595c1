"""Native unit tests: the same batch loop as the component, no Wasm runtime."""

import unittest

import sluice
from sluice.testing import run

from app import Plugin


class PluginTest(unittest.TestCase):
    def test_marks_objects_and_rejects_the_rest(self):
        out = run(Plugin, ['{"a":1}', "[1]", None])
        self.assertEqual(out.values(), ['{"a":1,"seen":true}', None])
        self.assertEqual(out.rejected(), [(1, "expected a JSON object")])

    def test_refuses_unknown_parameters(self):
        with self.assertRaises(sluice.ParamError):
            run(Plugin, [], params={"feild": "x"})


if __name__ == "__main__":
    unittest.main()
