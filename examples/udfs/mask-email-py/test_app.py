"""Unit tests with plain Python: `sluice.udfs.call` runs what the component runs."""

import unittest

from sluice import udfs

import app


class MaskEmailTest(unittest.TestCase):
    def test_masks_the_local_part_and_lowercases_the_domain(self):
        self.assertEqual(udfs.call(app.mask_email, b'["Ada@Example.COM"]'), b'"A***@example.com"')

    def test_null_gives_null(self):
        self.assertEqual(udfs.call(app.mask_email, b"[null]"), b"null")

    def test_a_bad_address_is_an_error_naming_it(self):
        with self.assertRaises(udfs.UdfError) as e:
            udfs.call(app.mask_email, b'["nobody"]')
        self.assertTrue(
            str(e.exception).startswith("ValueError: not an email address: 'nobody' (app.py line "),
            str(e.exception),
        )


if __name__ == "__main__":
    unittest.main()
