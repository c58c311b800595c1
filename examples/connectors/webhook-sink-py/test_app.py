"""Native tests of the webhook sink: the SDK's harness calls it as the host
does, and `with_http` answers its requests (no Wasm runtime, no server).
Run: `PYTHONPATH=../../../sdk/python python3 -m pytest` (or `-m unittest`)."""

import unittest

import sluice
from sluice import http
from sluice.testing import Response, SinkHarness, with_http

from app import WebhookSink

URL = {"url": "http://hook.test/in", "header.Authorization": "Bearer t"}


class WebhookSinkTest(unittest.TestCase):
    def test_posts_the_batch_as_one_json_array_with_the_headers(self):
        got = []
        with with_http(lambda req: got.append(req) or Response(200), grant=["hook.test:80"]):
            sink = SinkHarness(WebhookSink, URL)
            self.assertEqual(sink.write(['{"a":1}', None, "2"]), [])
            self.assertEqual(sink.flush(), b"")
        self.assertEqual(len(got), 1)
        self.assertEqual(got[0].body, b'[{"a":1},null,2]')
        self.assertEqual(
            got[0].headers,
            [("Content-Type", "application/json"), ("Authorization", "Bearer t")],
        )

    def test_a_refused_batch_is_split_and_only_the_refused_events_dead_lettered(self):
        def endpoint(req):
            status = 422 if b"bad" in req.body else 200
            return Response(status, body=b"got " + req.body)

        with with_http(endpoint):
            refused = SinkHarness(WebhookSink, URL).write(['{"a":1}', '{"bad":2}', '{"a":3}'])
        self.assertEqual(refused, [(1, 'HTTP 422: got [{"bad":2}]')])

    def test_server_errors_and_timeouts_ask_for_a_retry(self):
        with with_http(lambda req: Response(503, body=b"busy")):
            with self.assertRaises(sluice.Retry) as e:
                SinkHarness(WebhookSink, URL).write(["1"])
        self.assertEqual(e.exception.reason, "HTTP 503: busy")

        def hang(req):
            raise http.Timeout("did not answer within http_limits.first_byte_ms of 300 ms")

        with with_http(hang):
            with self.assertRaises(sluice.Retry) as e:
                SinkHarness(WebhookSink, URL).write(["1"])
        self.assertEqual(e.exception.reason, "timeout: did not answer within http_limits.first_byte_ms of 300 ms")

    def test_a_host_outside_the_grant_stops_the_pipeline_naming_it(self):
        with with_http(lambda req: Response(200), grant=["127.0.0.1:8080"]):
            with self.assertRaises(sluice.Fatal) as e:
                SinkHarness(WebhookSink, URL).write(["1"])
        self.assertTrue(
            e.exception.reason.startswith(
                "denied: hook.test:80 is not in this connector's grant (grants.http: [127.0.0.1:8080])"
            ),
            e.exception.reason,
        )

    def test_refuses_bad_parameters(self):
        with self.assertRaisesRegex(sluice.ParamError, "parameter `url` is required"):
            SinkHarness(WebhookSink, {})
        with self.assertRaisesRegex(sluice.ParamError, "must start with http"):
            SinkHarness(WebhookSink, {"url": "ftp://x"})
        with self.assertRaisesRegex(sluice.ParamError, "unknown parameter `retries`"):
            SinkHarness(WebhookSink, {"url": "http://x/", "retries": "3"})


if __name__ == "__main__":
    unittest.main()
