"""Which pinned PyPI packages (pyproject.toml, plus the psycopg[binary] extra) ship a Linux
aarch64 build: reads PyPI's simple index (PEP 691 JSON) file list of each pinned version, and
prints the table of docs/compose.md. One request per package; name packages to check only those.
Usage: .venv/bin/python docker/arm64_check.py [PACKAGE...]"""

import json
import re
import sys
import tomllib
import urllib.request
from pathlib import Path

project = tomllib.loads(Path(__file__).resolve().parent.parent.joinpath("pyproject.toml").read_text())["project"]
pins = project["dependencies"] + project["optional-dependencies"]["dev"]


def files(name: str, version: str) -> list[str]:
    request = urllib.request.Request(f"https://pypi.org/simple/{name}/",
                                     headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    data = json.load(urllib.request.urlopen(request, timeout=30))
    norm = re.sub(r"[-_.]+", "_", name).lower()
    out = []
    for f in data["files"]:
        fn = f["filename"]
        stem = re.sub(r"[-_.]+", "_", fn.lower())
        if fn.endswith(".whl"):
            n, v = fn.split("-")[:2]
            if re.sub(r"[-_.]+", "_", n).lower() == norm and v == version:
                out.append(fn)
        elif fn.endswith((".tar.gz", ".zip")) and stem.startswith(f"{norm}_{re.sub(r'[-_.]+', '_', version)}_"):
            out.append(fn)
    return out


def verdict(fs: list[str]) -> tuple[str, str]:
    whl = [f for f in fs if f.endswith(".whl")]
    arm = sorted(f for f in whl if "aarch64" in f)
    pure = [f for f in whl if f.endswith("-any.whl")]
    sdist = [f for f in fs if not f.endswith(".whl")]
    if pure:
        return "yes (pure-Python wheel)", pure[0]
    if arm:
        cp311 = [f for f in arm if "-cp311-" in f or "abi3" in f or "-none-" in f]
        return ("yes (aarch64 wheel)" if cp311 else "aarch64 wheel, not for cp311"), (cp311 or arm)[0]
    if sdist and not whl:
        return "sdist only (pip builds a wheel; pure Python builds on any arch)", sdist[0]
    return "NO aarch64 build" + (" (sdist exists: needs a compiler/toolchain)" if sdist else ""), ", ".join(whl[:3])


print("| package | version | arm64 (linux aarch64) | example file |")
print("|---|---|---|---|")
wanted = {name.lower() for name in sys.argv[1:]}
for spec in pins:
    name, extra, version = re.match(r"([A-Za-z0-9_.\-]+)(\[[^\]]*\])?==([^\s#;]+)", spec).groups()
    if wanted and name.lower() not in wanted:
        continue
    targets = [(name, version)] + ([("psycopg-binary", version)] if extra == "[binary]" else [])
    for n, v in targets:
        try:
            fs = files(n, v)
            ok, example = verdict(fs) if fs else ("version not found on PyPI", "")
        except Exception as exc:  # noqa: BLE001
            ok, example = f"lookup failed: {exc}", ""
        print(f"| {n} | {v} | {ok} | {example} |")
