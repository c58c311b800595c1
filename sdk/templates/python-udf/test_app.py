"""Native tests: `sluice.udfs.call` runs what the component runs, bytes in and out."""

import unittest

from sluice import udfs

import app


class UdfTest(unittest.TestCase):
    def test_reverses_text(self):
        self.assertEqual(udfs.call(app.{{name_snake}}, b'["abc"]'), b'"cba"')

    def test_null_gives_null(self):
        self.assertEqual(udfs.call(app.{{name_snake}}, b"[null]"), b"null")

    def test_a_number_is_an_error(self):
        with self.assertRaises(udfs.UdfError):
            udfs.call(app.{{name_snake}}, b"[1]")


if __name__ == "__main__":
    unittest.main()
