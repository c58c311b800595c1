"""Native tests: the SDK's harness calls the source as the host does, and
`with_http` answers its requests (no Wasm runtime, no server)."""

import json
import unittest

from sluice.testing import Response, SourceHarness, with_http

from app import Connector

URL = {"url": "http://api.test/items"}


def api(req):
    cursor = int(req.url.split("cursor=")[1].split("&")[0] or 0)
    items = [{"id": i} for i in range(cursor, min(cursor + 2, 3))]
    return Response(200, body=json.dumps({"items": items, "next": str(cursor + len(items))}).encode())


class ConnectorTest(unittest.TestCase):
    def test_pages_and_resumes_from_the_position(self):
        with with_http(api):
            source = SourceHarness(Connector, URL)
            first = source.poll()
            self.assertEqual(first.values(), ['{"id":0}', '{"id":1}'])
            self.assertEqual(first.position, b"2")
            restarted = SourceHarness(Connector, URL, position=first.position)
            self.assertEqual(restarted.poll().values(), ['{"id":2}'])
            last = restarted.poll()
            self.assertEqual((last.caught_up, last.done), (True, False))

    def test_caught_up_stays_set_when_new_items_arrive(self):
        pages = iter([[], [{"id": 7}], []])

        def growing(req):
            items = next(pages)
            return Response(200, body=json.dumps({"items": items, "next": "x"}).encode())

        with with_http(growing):
            source = SourceHarness(Connector, URL)
            self.assertTrue(source.poll().caught_up)
            # The harness fails a poll that clears the flag once set.
            live = source.poll()
            self.assertEqual((live.values(), live.caught_up), (['{"id":7}'], True))

    def test_a_bounded_read_ends_when_caught_up(self):
        with with_http(api):
            polls = SourceHarness(Connector, {**URL, "stop_when_caught_up": "true"}).poll_until_done()
        self.assertEqual([v for p in polls for v in p.values()], ['{"id":0}', '{"id":1}', '{"id":2}'])


if __name__ == "__main__":
    unittest.main()
