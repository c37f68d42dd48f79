#!/usr/bin/env python3
"""Fail unless every ELF shared object under DIR targets the expected arch.

usage: check_arch.py DIR {arm64|aarch64|x86_64|amd64}
Finds ELF files by magic bytes (not by name) whose name contains '.so'
(foo.so, foo.so.1.2) or whose e_type is ET_DYN; reads e_machine.
Exit 0 = all match (prints count), 1 = offenders printed, 2 = usage error.
"""
import os
import struct
import sys

ARCH = {"arm64": 183, "aarch64": 183, "x86_64": 62, "amd64": 62}
NAMES = {183: "aarch64", 62: "x86_64", 3: "i386", 40: "arm", 243: "riscv", 21: "ppc64"}
ET_DYN = 3


def elf_info(path):
    """Return (e_type, e_machine) for an ELF file, else None."""
    try:
        with open(path, "rb") as f:
            hdr = f.read(20)
    except OSError:
        return None
    if len(hdr) < 20 or hdr[:4] != b"\x7fELF":
        return None
    endian = "<" if hdr[5] == 1 else ">"  # EI_DATA: 1=LSB, 2=MSB
    return struct.unpack(endian + "HH", hdr[16:20])


def main(argv):
    if len(argv) != 3 or argv[2] not in ARCH:
        print(__doc__, file=sys.stderr)
        return 2
    root, want = argv[1], ARCH[argv[2]]
    if not os.path.isdir(root):
        print(f"not a directory: {root}", file=sys.stderr)
        return 2
    checked, bad = 0, []
    for d, _, files in os.walk(root):
        for name in files:
            p = os.path.join(d, name)
            if os.path.islink(p):
                continue
            info = elf_info(p)
            if info is None:
                continue
            e_type, e_machine = info
            if ".so" not in name and e_type != ET_DYN:
                continue
            checked += 1
            if e_machine != want:
                bad.append((p, e_machine))
    for p, m in bad:
        print(f"WRONG ARCH {NAMES.get(m, m)} (e_machine={m}): {p}")
    status = "FAIL" if bad else "OK"
    print(f"{status}: {checked} ELF shared objects checked, {len(bad)} not {argv[2]} (e_machine={want})")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
