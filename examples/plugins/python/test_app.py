"""Native unit test of the Python normalize transform: the same batch loop as the
component, no Wasm runtime. Run from the repository root with
`PYTHONPATH=sdk/python python -m unittest discover -s examples/plugins/python`."""

import os
import unittest

from sluice.testing import run

from app import Normalize

HERE = os.path.dirname(os.path.abspath(__file__))


class NormalizeTest(unittest.TestCase):
    def test_normalizes_masks_drops_aud_and_fans_out_items(self):
        out = run(
            Normalize,
            [
                '{"price":50.5,"currency":"usd","email":"bill@example.com"}',
                '{"price":1,"currency":"aud"}',
                '{"price":1,"currency":"jpy","items":["a","b"]}',
                "[1]",
                None,
            ],
        )
        self.assertEqual(
            out.values(),
            [
                '{"currency":"USD","email":"b***@example.com","price_cents":5050}',
                '{"currency":"JPY","item":"a","item_index":0,"price_cents":1}',
                '{"currency":"JPY","item":"b","item_index":1,"price_cents":1}',
                None,
            ],
        )
        self.assertEqual(out.rejected(), [(3, "expected a JSON object")])

    def test_rejects_booleans_and_nonfinite_prices(self):
        out = run(Normalize, ['{"price":true,"currency":"usd"}', '{"price":1e400,"currency":"usd"}'])
        self.assertEqual(
            out.rejected(),
            [(0, "price must be a non-negative number"), (1, "expected a JSON object")],
        )

    def test_matches_the_reference_output_on_the_sample_events(self):
        with open(os.path.join(HERE, "..", "events.jsonl"), encoding="utf-8") as f:
            events = f.read().splitlines()
        with open(os.path.join(HERE, "..", "expected.jsonl"), encoding="utf-8") as f:
            expected = f.read().splitlines()
        out = run(Normalize, events)
        self.assertEqual(out.values(), expected)
        self.assertEqual(
            [reason for _, reason in out.rejected()],
            [
                "price must be a non-negative number",
                "price must be a non-negative number",
                "unknown currency chf",
                "currency must be a string",
                "expected a JSON object",
            ],
        )


if __name__ == "__main__":
    unittest.main()
