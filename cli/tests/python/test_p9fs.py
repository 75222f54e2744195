"""Drives a 9P server with the p9fs client (PyPI, on py9p): an independent implementation.

Usage: test_p9fs.py HOST PORT DIALECT ANAME

Runs one fixed script of file operations and prints one JSON object of what each step saw, with
times left out, so the caller can compare two servers' answers (cairn and diod) line for line.
Exits non-zero on a step that raised unexpectedly.

p9fs bugs worked around here (not cairn's): `mv` copies through blocks of exactly msize bytes, so
a Twrite of a file bigger than msize minus 23 is larger than msize and a strict server (diod,
cairn) drops the connection; the script only moves files smaller than that. And reading a
one-byte file returns nothing (its read range ends one byte short), so no file here is that small.
"""

import hashlib
import json
import sys

import p9fs


def main():
    host, port, dialect, aname = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    fs = p9fs.P9FileSystem(host=host, port=port, username="root", version=dialect, aname=aname)
    seen = {}

    def step(name, fn):
        try:
            seen[name] = fn()
        except Exception as e:  # the error itself is part of what the server answered
            code = e.args[0] if e.args else ""
            if isinstance(code, bytes):
                code = code.decode("utf-8", "replace")
            elif not isinstance(code, (int, str)):
                code = ""
            seen[name] = "error: %s %s" % (type(e).__name__, code)

    def entries(path):
        return sorted((e["name"].rsplit("/", 1)[-1], e["type"], e["size"] if e["type"] == "file" else None)
                      for e in fs.ls(path, detail=True))

    step("ls_root", lambda: entries(""))
    step("write_small", lambda: fs.pipe("small.txt", b"hello, 9p\n") or "ok")
    step("read_small", lambda: fs.cat("small.txt").decode())
    big = bytes((i * 7 + 3) % 251 for i in range(3 * 1024 * 1024))
    step("write_big", lambda: fs.pipe("big.bin", big) or "ok")
    step("read_big_sha", lambda: hashlib.sha256(fs.cat("big.bin")).hexdigest())
    step("big_sha_expected", lambda: hashlib.sha256(big).hexdigest())
    step("info_big", lambda: {k: fs.info("big.bin")[k] for k in ("name", "type", "size")})
    step("mkdir", lambda: fs.mkdir("dir1", create_parents=False) or "ok")
    step("mkdir_again", lambda: fs.mkdir("dir1", create_parents=False) or "ok")
    step("isdir", lambda: fs.isdir("dir1"))
    step("mv_small", lambda: fs.mv("small.txt", "dir1/moved.txt") or "ok")
    step("ls_dir1", lambda: entries("dir1"))
    step("exists_old", lambda: fs.exists("small.txt"))
    step("read_moved", lambda: fs.cat("dir1/moved.txt").decode())
    step("many_files", lambda: [fs.pipe("dir1/f%03d" % i, b"file %d" % i) for i in range(200)] and "ok")
    step("ls_many", lambda: len(fs.ls("dir1", detail=False)))
    step("read_many", lambda: [fs.cat("dir1/f%03d" % i).decode() for i in range(200)] == ["file %d" % i for i in range(200)])
    step("rm_missing", lambda: fs.rm("nope.txt") or "ok")
    step("cat_missing", lambda: fs.cat("nope.txt"))
    step("rm_files", lambda: [fs.rm("dir1/f%03d" % i) for i in range(200)] and "ok")
    step("rmdir_nonempty", lambda: fs.rmdir("dir1") or "ok")
    step("rm_moved", lambda: fs.rm("dir1/moved.txt") or "ok")
    step("rmdir", lambda: fs.rmdir("dir1") or "ok")
    step("rm_big", lambda: fs.rm("big.bin") or "ok")
    step("ls_end", lambda: entries(""))
    print(json.dumps(seen, sort_keys=True))


if __name__ == "__main__":
    main()
