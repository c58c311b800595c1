"""Tests of the connector classes, the batch tables and the native harness.
Run with `python3 -m unittest discover -s sdk/python/tests` or `pytest sdk/python/tests`."""

import os
import struct
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import sluice  # noqa: E402
from sluice import connector, http  # noqa: E402
from sluice.testing import (  # noqa: E402
    Response,
    SinkHarness,
    SourceHarness,
    TestEvent,
    with_clock,
    with_http,
)


class Count(sluice.Source):
    """Counts to `to`; the position is the next number; a commit is recorded."""

    def __init__(self, params, position):
        params.only("to", "bad")
        self.to = params.int("to", 3)
        self.bad = params.int("bad", -1)
        self.next = int(position) if position else 0
        self.committed = []

    def poll(self, max_events, out):
        while len(out) < max_events and self.next < self.to:
            if self.next == self.bad:
                out.malformed(b"\xffnot json", f"item {self.next} is not JSON")
            else:
                out.emit_json({"n": self.next}, key=str(self.next))
            self.next += 1
        out.position = str(self.next)
        out.caught_up = self.next == self.to
        out.done = self.next == self.to

    def commit(self, position):
        self.committed.append(position)


class Recorder(sluice.Sink):
    """Buffers what it is given; flush makes it 'durable' and returns the count."""

    def __init__(self, params, position):
        params.only("refuse")
        self.refuse = params.get("refuse", "")
        self.durable = int(position) if position else 0
        self.buffer = []
        self.seen = []

    def write(self, events, rejected):
        for e in events:
            self.seen.append((e.key, e.value, e.headers, e.timestamp_ms, e.stream))
            if self.refuse and e.value is not None and self.refuse.encode() in e.value:
                rejected.reject(e, f"refused {e.text()}")
            else:
                self.buffer.append(e.value)

    def flush(self):
        self.durable += len(self.buffer)
        self.buffer.clear()
        return str(self.durable)


class Hook(sluice.Sink):
    def __init__(self, params, position):
        self.url = params.required("url")

    def write(self, events, rejected):
        resp = http.post(self.url, b"[" + b",".join(e.value for e in events) + b"]")
        if resp.status >= 500:
            raise sluice.Retry(f"HTTP {resp.status}: {resp.text()}")

    def flush(self):
        return None


class SourceTest(unittest.TestCase):
    def test_polls_events_positions_and_flags(self):
        h = SourceHarness(Count, {"to": "3"})
        first = h.poll(2)
        self.assertEqual(first.values(), ['{"n":0}', '{"n":1}'])
        self.assertEqual(first.keys(), [b"0", b"1"])
        self.assertEqual(first.position, b"2")
        self.assertFalse(first.caught_up or first.done)
        last = h.poll(10)
        self.assertEqual((last.values(), last.position, last.caught_up, last.done), (['{"n":2}'], b"3", True, True))

    def test_a_restart_at_a_position_goes_on_from_there(self):
        polls = SourceHarness(Count, {"to": "5"}, position=b"3").poll_until_done()
        self.assertEqual([v for p in polls for v in p.values()], ['{"n":3}', '{"n":4}'])

    def test_malformed_inputs_carry_raw_bytes_and_reason(self):
        out = SourceHarness(Count, {"to": "3", "bad": "1"}).poll()
        self.assertEqual(out.values(), ['{"n":0}', '{"n":2}'])
        self.assertEqual(out.malformed_inputs, [(b"\xffnot json", "item 1 is not JSON")])

    def test_commit_hands_the_position_over(self):
        h = SourceHarness(Count, {"to": "1"})
        h.poll()
        h.commit("1")
        self.assertEqual(h.source.committed, [b"1"])

    def test_bad_params_fail_at_open(self):
        with self.assertRaises(sluice.ParamError):
            SourceHarness(Count, {"tto": "1"})

    def test_the_harness_holds_a_source_to_the_contract(self):
        class Greedy(Count):
            def poll(self, max_events, out):
                for i in range(max_events + 1):
                    out.emit(b"1")

        with self.assertRaisesRegex(AssertionError, "more than the 2 asked for"):
            SourceHarness(Greedy).poll(2)

        class Forgetful(Count):
            def poll(self, max_events, out):
                out.caught_up = self.next == 0
                self.next += 1

        h = SourceHarness(Forgetful)
        h.poll()
        with self.assertRaisesRegex(AssertionError, "caught_up was cleared"):
            h.poll()


class SinkTest(unittest.TestCase):
    def test_writes_refuses_per_event_and_flushes_a_position(self):
        h = SinkHarness(Recorder, {"refuse": "bad"}, position="10")
        refused = h.write(['{"a":1}', '{"bad":2}', None])
        self.assertEqual(refused, [(1, 'refused {"bad":2}')])
        self.assertEqual(h.flush(), b"12")

    def test_events_arrive_with_key_headers_timestamp_and_stream(self):
        h = SinkHarness(Recorder)
        h.write([TestEvent('{"a":1}', key="k", headers=[("h", b"v"), ("i", "w")], timestamp_ms=7), None], stream="orders")
        self.assertEqual(
            h.sink.seen,
            [
                (b"k", b'{"a":1}', [("h", b"v"), ("i", b"w")], 7, "orders"),
                (None, None, [], 0, "orders"),
            ],
        )

    def test_a_rejection_outside_the_batch_is_an_error(self):
        class OffByOne(Recorder):
            def write(self, events, rejected):
                rejected.reject(len(events), "no such event")

        with self.assertRaisesRegex(IndexError, "index 1 is outside the batch of 1"):
            SinkHarness(OffByOne).write(["1"])

    def test_one_refusal_per_event(self):
        r = connector.Rejections(2)
        r.reject(1, "first")
        r.reject(1, "second")
        self.assertEqual(r.items, [(1, "first")])

    def test_flush_none_is_an_empty_position(self):
        with with_http(lambda req: Response(200)):
            self.assertEqual(SinkHarness(Hook, {"url": "http://h.test/"}).flush(), b"")


class HttpTest(unittest.TestCase):
    def test_requests_reach_the_handler_and_responses_come_back(self):
        got = []

        def handler(req):
            got.append(req)
            return Response(503, [("Retry-After", "1")], b"busy")

        with with_http(handler):
            with self.assertRaises(sluice.Retry) as e:
                SinkHarness(Hook, {"url": "http://h.test:8080/in"}).write(['{"a":1}', "2"])
        self.assertEqual(e.exception.reason, "HTTP 503: busy")
        self.assertEqual((got[0].method, got[0].url, got[0].body), ("POST", "http://h.test:8080/in", b'[{"a":1},2]'))

    def test_a_host_outside_the_grant_is_denied_naming_host_and_grant(self):
        calls = []
        with with_http(lambda req: calls.append(req) or Response(200), grant=["127.0.0.1:9", "ok.test:443"]):
            with self.assertRaises(http.Denied) as e:
                http.get("https://evil.test/x")
            with self.assertRaises(sluice.Fatal) as stop:
                SinkHarness(Hook, {"url": "http://evil.test:81/in"}).write(["1"])
            self.assertEqual(http.get("https://OK.test/").status, 200)
        self.assertEqual(
            e.exception.message,
            "evil.test:443 is not in this connector's grant (grants.http: [127.0.0.1:9, ok.test:443]); "
            "add it to the pipeline's `grants.http` if the connector should reach it",
        )
        self.assertIn("denied: evil.test:81 is not in this connector's grant", stop.exception.reason)
        self.assertEqual(len(calls), 1, "only the granted request reached the handler")

    def test_timeouts_and_failures_become_retries(self):
        for error in (http.Timeout("did not answer"), http.Failed("connection refused")):

            def handler(req, error=error):
                raise error

            with with_http(handler):
                with self.assertRaises(sluice.Retry) as e:
                    SinkHarness(Hook, {"url": "http://h.test/"}).write(["1"])
            self.assertEqual(e.exception.reason, str(error))

    def test_without_a_handler_http_is_refused(self):
        with self.assertRaisesRegex(http.Denied, "no HTTP in this native test"):
            http.get("http://h.test/")

    def test_response_helpers(self):
        r = Response(200, [("Content-Type", "application/json")], b'{"a":[1]}')
        self.assertEqual((r.json(), r.text(), r.header("content-type")), ({"a": [1]}, '{"a":[1]}', "application/json"))


class TablesTest(unittest.TestCase):
    def test_events_pack_into_the_contracts_48_byte_records(self):
        data, events, headers = connector.encode_events(
            [(b"k", b"v1", [(b"h", b"x")], 5), (None, None, [], -1)]
        )
        self.assertEqual(data, b"kv1hx")
        self.assertEqual(len(events), 96)
        self.assertEqual(
            struct.unpack("<IIIIIIqIIII", events[:48]), (0, 1, 1, 2, 0, 1, 5, 0, 0, 3, 0)
        )
        self.assertEqual(
            struct.unpack("<IIIIIIqIIII", events[48:]), (0, 0, 0, 0, 1, 0, -1, 0, 1, 0, 0)
        )
        self.assertEqual(struct.unpack("<IIII", headers), (3, 1, 4, 1))
        back = connector.decode_batch(data, events, headers, ["s"])
        ev = sluice.Event(back, back.events[0], 0)
        self.assertEqual((ev.key, ev.value, ev.headers, ev.timestamp_ms, ev.stream), (b"k", b"v1", [("h", b"x")], 5, "s"))
        self.assertTrue(sluice.Event(back, back.events[1], 1).is_tombstone)

    def test_a_table_of_the_wrong_length_is_refused(self):
        with self.assertRaisesRegex(ValueError, "event table of 47 bytes"):
            connector.decode_batch(b"", b"\0" * 47, b"", [])



class Stamped(sluice.Source):
    """One event per poll, stamped with the clock."""

    def __init__(self, params, position):
        self.started = sluice.clock.monotonic_ns()

    def poll(self, max_events, out):
        out.emit_json({"at": sluice.clock.now_ms(), "since_ns": sluice.clock.monotonic_ns() - self.started})
        out.done = True


class ClockTest(unittest.TestCase):
    def test_a_fixed_clock_is_read_and_advanced_and_the_machines_comes_back(self):
        with with_clock(1_700_000_000_000) as fixed:
            src = SourceHarness(Stamped, {})
            fixed.advance(1500)
            self.assertEqual(src.poll().values(), ['{"at":1700000001500,"since_ns":1500000000}'])
        import time

        self.assertLess(abs(sluice.clock.now_ms() - time.time_ns() // 1_000_000), 1000)


if __name__ == "__main__":
    unittest.main()
