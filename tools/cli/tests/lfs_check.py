#!/usr/bin/env python3
"""Reads an image `cairn` made with littlefs-python (littlefs' C sources built and driven by
another project) and checks it against what `cairn` itself says of the image:

- littlefs-python mounts the raw image with the geometry `cairn info` reports;
- it lists the same files with the same sizes as `cairn IMAGE lfs ls`;
- every file's bytes equal those `cairn IMAGE lfs cat` reads through the library's littlefs;
- the root record starts with cairndb's magic;
- a file littlefs-python adds to a copy of the image is seen by `cairn`, and the database in
  that copy still opens and checks clean.

Run by `cargo xtask test` (step cli); exits non-zero with a message on the first difference.
"""
import argparse
import json
import subprocess
import sys

from littlefs import LittleFS


def run(cmd):
    r = subprocess.run(cmd, capture_output=True)
    if r.returncode != 0:
        sys.exit(f"lfs_check: {' '.join(cmd)} failed ({r.returncode}): {r.stderr.decode()}")
    return r.stdout


def mount(data, g):
    fs = LittleFS(
        block_size=g["block_size"],
        block_count=g["block_count"],
        read_size=g["read_size"],
        prog_size=g["prog_size"],
        # littlefs 2.9 (the library's) writes disk version 2.1: keep to it.
        disk_version=0x00020001,
        mount=False,
    )
    fs.context.buffer = bytearray(data)
    fs.mount()
    return fs


def files_of(fs):
    out = {}
    for root, _dirs, names in fs.walk("/"):
        for n in names:
            path = (root.rstrip("/") + "/" + n).lstrip("/")
            with fs.open(path, "rb") as f:
                out[path] = (fs.stat(path).size, f.read())
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--cairn", required=True)
    p.add_argument("--image", required=True)
    p.add_argument("--key-hex", required=True)
    a = p.parse_args()
    key = ["--key-hex", a.key_hex]

    info = json.loads(run([a.cairn, a.image, "info", "--json"] + key))
    g = info["geometry"]
    data = open(a.image, "rb").read()
    if len(data) != g["block_size"] * g["block_count"]:
        sys.exit("lfs_check: the image is not exactly the flash")
    fs = mount(data, g)
    files = files_of(fs)

    listing = json.loads(run([a.cairn, a.image, "lfs", "ls", "--json"]))
    theirs = {e["name"]: e["size"] for e in listing if e["type"] == "file"}
    ours = {name: size for name, (size, _) in files.items()}
    if ours != theirs:
        sys.exit(f"lfs_check: littlefs-python lists {ours}, cairn lists {theirs}")
    for name, (size, content) in files.items():
        if len(content) != size:
            sys.exit(f"lfs_check: {name}: read {len(content)} bytes of {size}")
        if run([a.cairn, a.image, "lfs", "cat", name]) != content:
            sys.exit(f"lfs_check: {name}: littlefs-python and cairn read different bytes")
    if not files["cairn"][1].startswith(b"CAIRNDB\x01"):
        sys.exit("lfs_check: the root record lacks cairndb's magic")
    segments = [n for n in files if n.startswith("s")]
    if not segments:
        sys.exit("lfs_check: expected segment files (import more data)")

    # The other way: littlefs-python writes a file into a copy; cairn reads it and the database.
    copy = a.image + ".py.img"
    note = b"written by littlefs-python\n"
    with fs.open("hello.txt", "wb") as f:
        f.write(note)
    fs.unmount()
    open(copy, "wb").write(bytes(fs.context.buffer))
    if run([a.cairn, copy, "lfs", "cat", "hello.txt"]) != note:
        sys.exit("lfs_check: cairn does not read the file littlefs-python wrote")
    check = json.loads(run([a.cairn, copy, "check", "--json"] + key))
    if not check["clean"] or check["documents"] != info["documents"] + info["events"]:
        sys.exit(f"lfs_check: the database in the copy does not check clean: {check}")

    total = sum(size for size, _ in files.values())
    print(
        f"lfs_check: littlefs-python read {len(files)} files ({total} bytes, "
        f"{len(segments)} segments) identical to cairn's view; cairn read its write back"
    )


if __name__ == "__main__":
    main()
