"""Every text-protocol command of memcached, driven through pymemcache (a third-party client).

The server is already running on 127.0.0.1:$CACHE_TEST_PORT (the Rust test
`cache_interop::pymemcache_suite` starts it and stops it). Plain `unittest`, so that nothing but
pymemcache is needed:

    CACHE_TEST_PORT=11211 python3 -m unittest -v cli/tests/python/test_pymemcache.py

Each test flushes the cache first, so the tests are independent of each other's keys. Commands
pymemcache has no method for (gat, gats, verbosity, the meta commands) go through its
`raw_command` or a raw socket; pipelining goes through a raw socket.
"""

import os
import socket
import time
import unittest

from pymemcache.client.base import Client
from pymemcache.exceptions import (
    MemcacheClientError,
    MemcacheIllegalInputError,
    MemcacheServerError,
)

PORT = int(os.environ.get("CACHE_TEST_PORT", "11211"))
ADDR = ("127.0.0.1", PORT)
TIMEOUT = 10.0

# The largest value a default server (-I 1m) must accept, and one it must refuse.
LARGE_OK = 1000 * 1024
TOO_LARGE = 1024 * 1024 + 1


def client(**kw):
    """A client that waits for every reply unless told otherwise."""
    return Client(ADDR, connect_timeout=TIMEOUT, timeout=TIMEOUT, default_noreply=False, **kw)


def wait_until(predicate, limit=6.0, what="condition"):
    """Polls `predicate` every 50 ms until it holds (bounded by `limit` seconds)."""
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {limit} s")
        time.sleep(0.05)


class Raw:
    """A raw socket to the server, for meta commands and pipelining."""

    def __init__(self):
        self.sock = socket.create_connection(ADDR, timeout=TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def close(self):
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise EOFError("server closed the connection")
        self.buf += chunk

    def line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def exact(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def cmd(self, line):
        self.send(line + b"\r\n")
        return self.line()

    def meta(self, line):
        """Sends a meta command; returns (header line, value or None)."""
        self.send(line + b"\r\n")
        head = self.line()
        if head.startswith(b"VA "):
            n = int(head.split()[1])
            data = self.exact(n + 2)
            assert data.endswith(b"\r\n"), data
            return head, data[:-2]
        return head, None

    def closed(self):
        """True once the server has closed the connection."""
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True


class PymemcacheTest(unittest.TestCase):
    def setUp(self):
        self.c = client()
        self.assertTrue(self.c.flush_all())
        self.raw = Raw()

    def tearDown(self):
        self.c.close()
        self.raw.close()

    # --- retrieval -------------------------------------------------------------------------

    def test_get_and_gets(self):
        self.assertIsNone(self.c.get("missing"))
        self.assertTrue(self.c.set("k", b"value", flags=7))
        self.assertEqual(self.c.get("k"), b"value")
        value, cas = self.c.gets("k")
        self.assertEqual(value, b"value")
        self.assertTrue(cas.isdigit())
        self.assertEqual(self.c.gets("missing"), (None, None))
        # flags round-trip (seen through the raw protocol)
        self.assertEqual(self.c.raw_command("get k", "END\r\n"), b"VALUE k 7 5\r\nvalue\r\n")

    def test_gat_and_gats_update_the_expiry(self):
        self.c.set("k", b"v", expire=0)
        reply = self.c.raw_command("gat 100 k", "END\r\n")
        self.assertEqual(reply, b"VALUE k 0 1\r\nv\r\n")
        reply = self.c.raw_command("gats 100 k missing", "END\r\n")
        self.assertRegex(reply, rb"^VALUE k 0 1 \d+\r\nv\r\n$")
        self.assertEqual(self.c.raw_command("gat 100 missing", "END\r\n"), b"")
        # a negative expiry expires the item at once
        self.c.raw_command("gat -1 k", "END\r\n")
        self.assertIsNone(self.c.get("k"))
        # a short one expires it soon
        self.c.set("s", b"v")
        self.c.raw_command("gat 1 s", "END\r\n")
        wait_until(lambda: self.c.get("s") is None, what="gat 1 expiry")

    def test_multi_get_of_100_keys(self):
        values = {f"key:{i}": f"value-{i}".encode() * (i + 1) for i in range(100)}
        self.assertEqual(self.c.set_many(values), [])
        asked = list(values) + ["missing:1", "missing:2"]
        self.assertEqual(self.c.get_many(asked), values)
        got = self.c.gets_many(list(values))
        self.assertEqual({k: v for k, (v, _) in got.items()}, values)
        self.assertEqual(len({cas for _, cas in got.values()}), 100)

    # --- storage ---------------------------------------------------------------------------

    def test_set_add_replace(self):
        self.assertTrue(self.c.add("k", b"1"))
        self.assertFalse(self.c.add("k", b"2"))
        self.assertEqual(self.c.get("k"), b"1")
        self.assertTrue(self.c.replace("k", b"3"))
        self.assertFalse(self.c.replace("missing", b"3"))
        self.assertIsNone(self.c.get("missing"))
        self.assertTrue(self.c.set("k", b""))
        self.assertEqual(self.c.get("k"), b"")

    def test_append_and_prepend(self):
        self.assertFalse(self.c.append("missing", b"x"))
        self.assertFalse(self.c.prepend("missing", b"x"))
        self.c.set("k", b"mid", flags=5)
        self.assertTrue(self.c.append("k", b"-end"))
        self.assertTrue(self.c.prepend("k", b"start-"))
        self.assertEqual(self.c.get("k"), b"start-mid-end")
        # the item keeps its flags
        self.assertEqual(self.c.raw_command("get k", "END\r\n"), b"VALUE k 5 13\r\nstart-mid-end\r\n")

    def test_cas(self):
        self.assertIsNone(self.c.cas("missing", b"v", "1"))
        self.c.set("k", b"v1")
        _, cas = self.c.gets("k")
        self.assertTrue(self.c.cas("k", b"v2", cas))
        self.assertFalse(self.c.cas("k", b"v3", cas))
        self.assertEqual(self.c.get("k"), b"v2")
        _, cas2 = self.c.gets("k")
        self.assertNotEqual(cas, cas2)

    def test_expiry_on_set(self):
        self.c.set("neg", b"v", expire=-1)
        self.assertIsNone(self.c.get("neg"))
        self.c.set("short", b"v", expire=1)
        self.assertEqual(self.c.get("short"), b"v")
        wait_until(lambda: self.c.get("short") is None, what="expire=1")

    def test_delete(self):
        self.c.set("k", b"v")
        self.assertTrue(self.c.delete("k", noreply=False))
        self.assertFalse(self.c.delete("k", noreply=False))
        self.assertIsNone(self.c.get("k"))
        self.c.set_many({"a": b"1", "b": b"2"})
        self.assertTrue(self.c.delete_many(["a", "b"], noreply=False))
        self.assertEqual(self.c.get_many(["a", "b"]), {})

    def test_large_values_near_1_mib(self):
        big = bytes(range(256)) * (LARGE_OK // 256)
        self.assertTrue(self.c.set("big", big))
        self.assertEqual(self.c.get("big"), big)
        with self.assertRaises(MemcacheServerError):
            self.c.set("huge", b"x" * TOO_LARGE)
        self.assertIsNone(self.c.get("huge"))
        # the connection still works after the refused value
        self.assertEqual(self.c.get("big"), big)

    def test_key_length_limit(self):
        """250-byte keys work; the client refuses longer ones, and so does the server."""
        self.assertTrue(self.c.set("k" * 250, b"v"))
        self.assertEqual(self.c.get("k" * 250), b"v")
        with self.assertRaises(MemcacheIllegalInputError):
            self.c.set("k" * 251, b"v")
        reply = self.raw.cmd(b"get " + b"k" * 251)
        self.assertTrue(reply.startswith(b"CLIENT_ERROR"), reply)
        self.assertEqual(self.raw.cmd(b"mn"), b"MN")

    # --- arithmetic ------------------------------------------------------------------------

    def test_incr_and_decr(self):
        self.assertIsNone(self.c.incr("missing", 1))
        self.assertIsNone(self.c.decr("missing", 1))
        self.c.set("n", b"10")
        self.assertEqual(self.c.incr("n", 5), 15)
        self.assertEqual(self.c.decr("n", 3), 12)
        self.assertEqual(self.c.get("n"), b"12")
        # decr floors at zero (memcached may pad a shorter number with spaces: compare as numbers)
        self.assertEqual(self.c.decr("n", 100), 0)
        self.assertEqual(int(self.c.get("n")), 0)
        # incr wraps at 2^64
        self.c.set("w", b"18446744073709551615")
        self.assertEqual(self.c.incr("w", 1), 0)
        self.c.set("w", b"18446744073709551610")
        self.assertEqual(self.c.incr("w", 10), 4)
        # a shrinking number leaves no trailing digits behind
        self.c.set("d", b"100")
        self.assertEqual(self.c.decr("d", 91), 9)
        self.assertEqual(int(self.c.get("d")), 9)
        # non-numeric value
        self.c.set("s", b"abc")
        with self.assertRaises(MemcacheClientError):
            self.c.incr("s", 1)
        # noreply
        self.assertIsNone(self.c.incr("n", 7, noreply=True))
        self.assertEqual(int(self.c.get("n")), 7)

    # --- expiry, flush ---------------------------------------------------------------------

    def test_touch(self):
        self.assertFalse(self.c.touch("missing", 10))
        self.c.set("k", b"v", expire=0)
        self.assertTrue(self.c.touch("k", 1))
        wait_until(lambda: self.c.get("k") is None, what="touch 1 expiry")
        self.c.set("k", b"v", expire=1)
        self.assertTrue(self.c.touch("k", 0))
        self.assertTrue(self.c.touch("k", 100, noreply=True))
        self.assertEqual(self.c.get("k"), b"v")

    def test_flush_all_now_and_delayed(self):
        self.c.set_many({"a": b"1", "b": b"2"})
        self.assertTrue(self.c.flush_all())
        self.assertEqual(self.c.get_many(["a", "b"]), {})
        self.c.set("a", b"1")
        self.assertTrue(self.c.flush_all(delay=2))
        self.assertEqual(self.c.get("a"), b"1")
        wait_until(lambda: self.c.get("a") is None, what="flush_all 2")
        # once the delayed flush has passed, new items stay (memcached's clock has one-second
        # granularity, so an item stored within the flush's second may still go: poll)
        def stays():
            self.c.set("b", b"2")
            return self.c.get("b") == b"2"
        wait_until(stays, what="a store after the delayed flush")
        self.assertTrue(self.c.flush_all(noreply=True))
        self.assertIsNone(self.c.get("b"))

    # --- stats, version, verbosity, quit --------------------------------------------------

    def test_stats(self):
        self.c.set("k", b"v")
        self.c.get("k")
        self.c.get("missing")
        general = self.c.stats()
        for name in [
            b"pid", b"uptime", b"time", b"version", b"curr_connections", b"total_connections",
            b"cmd_get", b"cmd_set", b"get_hits", b"get_misses", b"curr_items", b"total_items",
            b"bytes", b"limit_maxbytes", b"evictions", b"threads",
        ]:
            self.assertIn(name, general)
        self.assertGreaterEqual(general[b"get_hits"], 1)
        self.assertGreaterEqual(general[b"get_misses"], 1)
        self.assertGreaterEqual(general[b"curr_items"], 1)
        self.assertEqual(general[b"limit_maxbytes"], 64 * 1024 * 1024)
        settings = self.c.stats("settings")
        for name in [b"maxbytes", b"maxconns", b"tcpport", b"num_threads", b"item_size_max"]:
            self.assertIn(name, settings)
        self.assertEqual(settings[b"tcpport"], PORT)
        self.assertEqual(settings[b"item_size_max"], 1024 * 1024)
        items = self.c.stats("items")
        self.assertTrue(any(k.endswith(b":number") for k in items), items)
        slabs = self.c.stats("slabs")
        self.assertIn(b"active_slabs", slabs)
        self.assertIn(b"total_malloced", slabs)

    def test_version_and_verbosity(self):
        version = self.c.version()
        self.assertRegex(version, rb"^\d+\.\d+\.\d+")
        self.assertEqual(self.c.raw_command("verbosity 1"), b"OK")
        self.assertEqual(self.c.raw_command("verbosity 0"), b"OK")
        self.raw.send(b"verbosity 1 noreply\r\n")
        self.assertEqual(self.raw.cmd(b"mn"), b"MN")

    def test_quit_closes_the_connection(self):
        self.c.set("k", b"v")
        self.c.quit()
        # the client reconnects on its next command
        self.assertEqual(self.c.get("k"), b"v")
        self.raw.send(b"quit\r\n")
        wait_until(self.raw.closed, what="close after quit")

    # --- noreply ---------------------------------------------------------------------------

    def test_noreply_variants(self):
        c = client()
        for call in [
            lambda: c.set("a", b"1", noreply=True),
            lambda: c.add("b", b"2", noreply=True),
            lambda: c.replace("a", b"3", noreply=True),
            lambda: c.append("a", b"4", noreply=True),
            lambda: c.prepend("a", b"5", noreply=True),
            lambda: c.incr("n", 1, noreply=True),
            lambda: c.delete("b", noreply=True),
            lambda: c.touch("a", 100, noreply=True),
        ]:
            call()
        self.assertEqual(c.get("a"), b"534")
        self.assertIsNone(c.get("b"))
        # cas noreply on the raw protocol: nothing comes back, the store happens
        _, cas = c.gets("a")
        self.raw.send(b"cas a 0 0 1 " + cas + b" noreply\r\nz\r\n")
        self.raw.send(b"incr missing 1 noreply\r\ndecr missing 1 noreply\r\n")
        self.raw.send(b"flush_all 0 noreply\r\n")
        self.assertEqual(self.raw.cmd(b"mn"), b"MN")
        self.assertIsNone(c.get("a"))
        c.close()

    # --- pipelining ------------------------------------------------------------------------

    def test_pipelined_requests(self):
        """100 commands in one write; the replies come back in order."""
        req = b""
        for i in range(50):
            v = f"v{i}".encode()
            req += b"set p%d 0 0 %d\r\n%s\r\n" % (i, len(v), v)
            req += b"get p%d\r\n" % i
        req += b"incr missing 1\r\ndelete p0\r\nget p0 p1\r\n"
        self.raw.send(req)
        for i in range(50):
            self.assertEqual(self.raw.line(), b"STORED")
            v = f"v{i}".encode()
            self.assertEqual(self.raw.line(), b"VALUE p%d 0 %d" % (i, len(v)))
            self.assertEqual(self.raw.line(), v)
            self.assertEqual(self.raw.line(), b"END")
        self.assertEqual(self.raw.line(), b"NOT_FOUND")
        self.assertEqual(self.raw.line(), b"DELETED")
        self.assertEqual(self.raw.line(), b"VALUE p1 0 2")
        self.assertEqual(self.raw.line(), b"v1")
        self.assertEqual(self.raw.line(), b"END")

    def test_pipelined_requests_split_at_every_byte(self):
        """A request arriving one byte per segment is parsed as if it came whole."""
        req = b"set s 3 0 5\r\nhello\r\nget s\r\n"
        for i in range(len(req)):
            self.raw.send(req[i : i + 1])
        self.assertEqual(self.raw.line(), b"STORED")
        self.assertEqual(self.raw.line(), b"VALUE s 3 5")
        self.assertEqual(self.raw.line(), b"hello")
        self.assertEqual(self.raw.line(), b"END")

    # --- meta commands ---------------------------------------------------------------------

    def test_meta_get(self):
        r = self.raw
        self.assertEqual(r.meta(b"mg missing v"), (b"EN", None))
        r.send(b"ms m 5 F9 T0\r\nhello\r\n")
        self.assertEqual(r.line(), b"HD")
        self.assertEqual(r.meta(b"mg m v"), (b"VA 5", b"hello"))
        self.assertEqual(r.meta(b"mg m"), (b"HD", None))
        head, value = r.meta(b"mg m s v f t k O123")
        self.assertEqual(value, b"hello")
        self.assertEqual(sorted(head.split()[2:]), sorted([b"s5", b"f9", b"t-1", b"km", b"O123"]))
        head, _ = r.meta(b"mg m c")
        cas = int(head.split()[1][1:])
        _, gets_cas = self.c.gets("m")
        self.assertEqual(cas, int(gets_cas))
        # q: a miss is silent, mn flushes the pipeline
        r.send(b"mg missing v q\r\nmg m v q k\r\nmn\r\n")
        self.assertEqual(r.line(), b"VA 5 km")
        self.assertEqual(r.exact(7), b"hello\r\n")
        self.assertEqual(r.line(), b"MN")
        # T updates the ttl, h says whether it was hit before
        self.assertEqual(r.meta(b"mg m T100 t"), (b"HD t100", None))
        head, _ = r.meta(b"mg m h")
        self.assertEqual(head, b"HD h1")

    def test_meta_set_modes(self):
        r = self.raw
        def ms(line, data):
            r.send(line + b"\r\n" + data + b"\r\n")
            return r.line()
        self.assertEqual(ms(b"ms a 1 ME", b"1"), b"HD")  # add on missing: stored
        self.assertEqual(ms(b"ms a 1", b"1"), b"HD")
        self.assertEqual(ms(b"ms a 1 ME", b"2"), b"NS")  # add on existing
        self.assertEqual(ms(b"ms b 1 MR", b"2"), b"NS")  # replace on missing
        self.assertEqual(ms(b"ms a 1 MA", b"3"), b"HD")  # append
        self.assertEqual(ms(b"ms a 1 MP", b"0"), b"HD")  # prepend
        self.assertEqual(r.meta(b"mg a v"), (b"VA 3", b"013"))
        head, _ = r.meta(b"mg a c")
        cas = head.split()[1][1:]
        self.assertEqual(ms(b"ms a 1 C" + cas, b"x"), b"HD")
        self.assertEqual(ms(b"ms a 1 C" + cas, b"y"), b"EX")
        self.assertEqual(ms(b"ms a 1 I", b"z"), b"HD")  # invalidate mode
        r.send(b"ms q 1 q\r\nz\r\n")  # q: a success is silent
        self.assertEqual(r.cmd(b"mn"), b"MN")
        self.assertEqual(r.meta(b"mg q v"), (b"VA 1", b"z"))
        self.assertEqual(ms(b"ms k 2 T0 F3 O77 k", b"kv"), b"HD O77 kk")
        self.assertEqual(self.c.raw_command("get k", "END\r\n"), b"VALUE k 3 2\r\nkv\r\n")

    def test_meta_delete_and_arithmetic(self):
        r = self.raw
        self.c.set("d", b"v")
        self.assertEqual(r.meta(b"md d"), (b"HD", None))
        self.assertEqual(r.meta(b"md d"), (b"NF", None))
        # q hides HD but not NF
        self.c.set("e", b"v")
        r.send(b"md e q\r\nmd e q\r\nmn\r\n")
        self.assertEqual(r.line(), b"NF")
        self.assertEqual(r.line(), b"MN")
        self.assertEqual(r.meta(b"ma n"), (b"NF", None))
        self.assertEqual(r.meta(b"ma n N0 J13 v"), (b"VA 2", b"13"))
        self.assertEqual(r.meta(b"ma n v"), (b"VA 2", b"14"))
        self.assertEqual(r.meta(b"ma n D10 v"), (b"VA 2", b"24"))
        self.assertEqual(r.meta(b"ma n MD D100 v"), (b"VA 1", b"0"))
        self.assertEqual(r.meta(b"ma n M+ D5"), (b"HD", None))
        self.assertEqual(int(self.c.get("n")), 5)
        self.c.set("s", b"abc")
        self.assertEqual(r.meta(b"ma s"), (b"CLIENT_ERROR cannot increment or decrement non-numeric value", None))
        self.assertEqual(r.meta(b"mn"), (b"MN", None))

    def test_meta_bad_input(self):
        r = self.raw
        self.assertTrue(r.cmd(b"mg " + b"k" * 251 + b" v").startswith(b"CLIENT_ERROR"))
        self.assertTrue(r.cmd(b"ms k notanumber").startswith(b"CLIENT_ERROR"))
        self.assertEqual(r.cmd(b"mn"), b"MN")


if __name__ == "__main__":
    unittest.main(verbosity=2)
