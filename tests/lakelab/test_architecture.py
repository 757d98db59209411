"""The layers, read from the code's own imports: the platform (lakelab/, services/) imports no
lab code; app code reaches services through their clients only; the stand-ins (aws/) know no
lab; one lab's code does not import another's."""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

import pytest

from lakelab.settings import ROOT

pytestmark = pytest.mark.unit

PACKAGES = ("lakelab", "services", "aws", "producers", "spark_jobs", "labs", "api")
PLATFORM = ("lakelab", "services")
# What the supervisor runs (process definitions, the registry, the supervisor and its CLI), as
# opposed to the clients (`services.<name>.client`, `services.s3.events`) that app code uses.
SUPERVISOR = re.compile(r"^services\.(base|registry|supervisor|cli|\w+\.service)$")
LAB = re.compile(r"(?:^|[._])(lab_[a-d])(?:$|[._])")


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def imports(path: Path) -> set[str]:
    """Every project module `path` imports, at the top or inside a function."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in names if name.split(".")[0] in PACKAGES}


GRAPH = {name: imports(path) for name, path in modules().items()}
KNOWN = set(GRAPH)


def edges(source: str, target) -> list[str]:
    """`module -> imported` pairs where the module matches `source` and the import `target`."""
    return sorted(f"{module} -> {name}" for module, names in GRAPH.items() if re.match(source, module)
                  for name in names if name in KNOWN and target(name))


def test_the_graph_is_read_from_every_package():
    assert {name.split(".")[0] for name in GRAPH} == set(PACKAGES)
    assert "services.s3.client" in GRAPH["labs.lab_b.stockdata_lambda"]


def test_the_platform_imports_no_lab_code():
    assert edges(r"(lakelab|services)\b", lambda name: name.split(".")[0] not in PLATFORM) == []


def test_app_code_uses_clients_never_the_supervisor_s_modules():
    assert edges(r"(aws|producers|spark_jobs|labs|api)\b", SUPERVISOR.match) == []


def test_stand_ins_producers_and_jobs_know_no_lab_home():
    assert edges(r"(aws|producers|spark_jobs)\b", lambda name: name.startswith("labs")) == []


def test_one_lab_does_not_import_another():
    crossing = []
    for module, names in GRAPH.items():
        own = LAB.search(module)
        for name in names & KNOWN:
            other = LAB.search(name)
            if own and other and own.group(1) != other.group(1):
                crossing.append(f"{module} -> {name}")
    assert crossing == []


def test_the_readme_layout_names_every_top_level_folder():
    readme = (ROOT / "README.md").read_text()
    layout = readme.split("## Layout", 1)[1].split("```")[1]
    # the folders a line starts with, before its two-space-separated description
    named = {name for line in layout.splitlines() for name in re.findall(r"([a-z_]+)/", re.split(r"\s{2,}", line)[0])}
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    folders = {path.split("/")[0] for path in tracked if "/" in path and not path.startswith(".")}
    assert folders <= named, f"not in the README's layout: {sorted(folders - named)}"
    assert named <= folders, f"in the README's layout but not in the tree: {sorted(named - folders)}"
