"""Native tests: the SDK's harness calls the sink as the host does, and
`with_http` answers its requests (no Wasm runtime, no server)."""

import unittest

import sluice
from sluice.testing import Response, SinkHarness, with_http

from app import Connector

URL = {"url": "http://hook.test/in"}


class ConnectorTest(unittest.TestCase):
    def test_a_4xx_dead_letters_the_batch(self):
        with with_http(lambda req: Response(400, body=b"bad")):
            sink = SinkHarness(Connector, URL)
            self.assertEqual(sink.write(['{"a":1}']), [(0, "HTTP 400: bad")])

    def test_a_5xx_asks_for_a_retry(self):
        with with_http(lambda req: Response(503)):
            with self.assertRaises(sluice.Retry):
                SinkHarness(Connector, URL).write(['{"a":1}'])

    def test_a_host_outside_the_grant_stops_the_pipeline(self):
        with with_http(lambda req: Response(200), grant=["other.test:80"]):
            with self.assertRaises(sluice.Fatal) as e:
                SinkHarness(Connector, URL).write(['{"a":1}'])
        self.assertIn("hook.test:80 is not in this connector's grant", str(e.exception))


if __name__ == "__main__":
    unittest.main()
