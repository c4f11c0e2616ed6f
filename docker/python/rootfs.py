"""Lays out a root filesystem holding this python (the interpreter, its
standard library less tests and GUI modules, the shared libraries `ldd`
names) and boto3 with its dependencies, botocore's data pruned to the
services the tests call. Files keep their host paths, so the interpreter
finds its prefix as on the host.

Usage: python3 rootfs.py OUT_DIR
"""

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

PACKAGES = ["boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six.py"]
BOTOCORE_SERVICES = {"ecs", "sts", "logs"}
SKIP = {"site-packages", "test", "tests", "idlelib", "tkinter", "turtledemo", "ensurepip",
        "lib2to3", "pydoc_data", "__pycache__", "unittest", "distutils"}


def place(out: Path, src: Path) -> None:
    """Copies `src` to the same path under `out`, links resolved."""
    dst = out / str(src).lstrip("/")
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.is_symlink():
        real = src.resolve()
        place(out, real)
        if not dst.exists():
            os.symlink(real, dst)
    elif not dst.exists():
        shutil.copy2(src, dst)


def libraries(binary: Path) -> set[Path]:
    text = subprocess.run(["ldd", str(binary)], capture_output=True, text=True).stdout
    return {Path(p) for p in re.findall(r"(/\S+) \(0x", text)}


def main(out: Path) -> None:
    exe = Path(sys.executable).resolve()
    place(out, exe)
    (out / "usr/local/bin").mkdir(parents=True, exist_ok=True)
    os.symlink(exe, out / "usr/local/bin/python3")
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    purelib = Path(sysconfig.get_paths()["purelib"])
    shutil.copytree(stdlib, out / str(stdlib).lstrip("/"), symlinks=True,
                    ignore=lambda d, names: [n for n in names if n in SKIP
                                             or n.startswith("config-")])
    site = out / str(purelib).lstrip("/")
    site.mkdir(parents=True, exist_ok=True)
    for name in PACKAGES:
        src = purelib / name
        if src.is_dir():
            shutil.copytree(src, site / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, site / name)
    data = site / "botocore" / "data"
    for entry in data.iterdir():
        if entry.is_dir() and entry.name not in BOTOCORE_SERVICES:
            shutil.rmtree(entry)
    binaries = [exe] + list(stdlib.glob("lib-dynload/*.so"))
    for b in binaries:
        for lib in libraries(b):
            place(out, lib)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
