"""`lakelab bench --smoke` end to end on the running stack: every benchmark runs on tiny inputs
(its figures mean nothing) and the report has each section, figures with the load average and the
core count, memory per service and the plots. `startup` needs the stack down, so with the stack
up it is reported as skipped with the command that runs it."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from bench.cli import ORDER
from lakelab.settings import ROOT
from tests.clikit import LAKELAB

pytestmark = pytest.mark.integration

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.mark.timeout(2400)
def test_the_bench_command_writes_the_report(stack, tmp_path):
    scratch = tmp_path / "tmp"  # the benchmarks' working folders (checkpoints...): removed at the end
    scratch.mkdir()
    results = tmp_path / "results"
    result = subprocess.run([*LAKELAB, "bench", "--smoke", "--results", str(results)], cwd=ROOT,
                            capture_output=True, text=True, timeout=2300, env={**os.environ, "TMPDIR": str(scratch)})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert [p.name for p in scratch.iterdir() if p.name.startswith("lakelab-")] == []
    (folder,) = results.iterdir()
    report = json.loads((folder / "report.json").read_text())
    sections = report["sections"]
    assert list(sections) == ORDER
    assert sections["startup"]["status"] == "skipped"
    assert "needs the stack down" in sections["startup"]["notes"][0]
    for name in ORDER[:-1]:
        section = sections[name]
        assert section["status"] == "done", (name, section["status"])
        assert section["figures"], name
        for figure in section["figures"]:
            assert figure["load"]["cores"] == os.cpu_count() and figure["load"]["one"] >= 0, figure
        assert section["memory"]["services_mib"].keys() >= {"kafka", "trino", "s3"}, name
        assert section["memory"]["total_mib"] > sum(section["memory"]["services_mib"].values()) * 0.5
        for plot in section["plots"]:
            assert (folder / plot).read_bytes().startswith(PNG), plot
    assert {p for s in sections.values() for p in s["plots"]} == {"api_latency.png", "ingest_freshness.png",
                                                                   "cdc_latency.png"}
    markdown = (folder / "report.md").read_text()
    assert "load 1/5/15, cores" in markdown and "![api_latency.png](api_latency.png)" in markdown
    assert all(f"(`{name}`)" in markdown for name in ORDER)
