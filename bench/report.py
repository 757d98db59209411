"""The benchmarks' report: figures with the machine's load beside each, sections per benchmark,
peak memory per service, and the files `bench/results/<date>/report.json` + `report.md`.

A run updates the sections it ran and keeps the day's others, so `lakelab bench startup` (stack
down) and `lakelab bench` (stack up) fill one report.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import psutil

from lakelab.settings import ROOT, Settings
from services import compose, supervisor

RESULTS_DIR = ROOT / "bench" / "results"


@dataclass
class Load:
    """The machine when a figure was taken: load average over 1, 5 and 15 minutes, and cores."""

    one: float
    five: float
    fifteen: float
    cores: int

    @classmethod
    def now(cls) -> Load:
        one, five, fifteen = os.getloadavg()
        return cls(round(one, 2), round(five, 2), round(fifteen, 2), os.cpu_count() or 1)

    def __str__(self) -> str:
        return f"load {self.one:.1f}/{self.five:.1f}/{self.fifteen:.1f}, {self.cores} cores"


@dataclass
class Figure:
    """One measured figure. A side-by-side figure also has the standard alternative's value from
    the same run and the ratio the goal is about (ours over theirs, or as the goal says)."""

    name: str
    value: float | None
    unit: str
    load: Load
    standard: float | None = None
    standard_name: str = ""
    ratio: float | None = None
    goal: str = ""
    met: bool | None = None

    def describe(self) -> str:
        text = f"{self.name}: {_number(self.value)} {self.unit}"
        if self.standard is not None:
            text += f" vs {_number(self.standard)} {self.unit} ({self.standard_name})"
        if self.ratio is not None:
            text += f", ratio {self.ratio:.2f}"
        if self.goal:
            text += f" (goal {self.goal}: {'met' if self.met else 'missed' if self.met is False else '?'})"
        return f"{text}  [{self.load}]"


@dataclass
class Memory:
    """Peak resident memory during a benchmark: each stack service's (its process tree), the
    benchmark's own processes (the lab jobs: Spark, sinks, generators), and the highest total
    of one sample."""

    services_mib: dict[str, float] = field(default_factory=dict)
    jobs_mib: float = 0.0
    total_mib: float = 0.0


@dataclass
class Section:
    name: str
    title: str
    status: str = "running"        # done, skipped, failed
    started: str = ""
    seconds: float = 0.0
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    plots: list[str] = field(default_factory=list)
    memory: Memory | None = None

    @classmethod
    def from_json(cls, data: dict) -> Section:
        figures = [Figure(**{**f, "load": Load(**f["load"])}) for f in data.pop("figures", [])]
        memory = Memory(**data.pop("memory")) if data.get("memory") else None
        data.pop("memory", None)
        return cls(**data, figures=figures, memory=memory)


class MemoryWatch:
    """Samples the RSS of every stack service and of this process's own tree once a second, in
    a thread, between `start()` and `stop()`."""

    def __init__(self, settings: Settings, interval_s: float = 1.0) -> None:
        self.settings, self.interval_s = settings, interval_s
        self.memory = Memory()
        self._container_pids: dict[str, int | None] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memory-watch", daemon=True)

    def start(self) -> MemoryWatch:
        self._thread.start()
        return self

    def stop(self) -> Memory:
        self._stop.set()
        self._thread.join(10)
        return self.memory

    def _run(self) -> None:
        while True:
            self.sample()
            if self._stop.wait(self.interval_s):
                return

    def _service_pid(self, name: str) -> int | None:
        """The root of a service's processes: natively the supervisor's child; in compose mode its
        container's init, as the host sees it (looked up once: a `docker inspect` each)."""
        if self.settings.mode != "compose":
            return supervisor.running_pid(self.settings, name)
        if name not in self._container_pids:
            self._container_pids[name] = compose.main_pid(self.settings, name)
        return self._container_pids[name]

    def sample(self) -> None:
        services = {name: tree for name in (s.name for s in supervisor.SERVICES)
                    if (tree := supervisor.process_tree(self._service_pid(name)))}
        service_pids = {p.pid for tree in services.values() for p in tree}
        # the benchmark's own processes, less the services it may have started (bench/startup.py)
        jobs = [p for p in supervisor.process_tree(os.getpid()) if p.pid not in service_pids]
        mib = {name: _mib(supervisor.rss_bytes(tree)) for name, tree in services.items()}
        jobs_mib = _mib(supervisor.rss_bytes(jobs))
        m = self.memory
        for name, value in mib.items():
            m.services_mib[name] = max(m.services_mib.get(name, 0.0), value)
        m.jobs_mib = max(m.jobs_mib, jobs_mib)
        m.total_mib = max(m.total_mib, sum(mib.values()) + jobs_mib)


def _mib(size: int) -> float:
    return round(size / 2**20, 1)


class Report:
    """The day's report folder: `report.json` (sections by name) rendered as `report.md`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / "report.json"
        self.sections: dict[str, Section] = {}
        if self.path.exists():
            data = json.loads(self.path.read_text())
            self.sections = {name: Section.from_json(s) for name, s in data.get("sections", {}).items()}

    @classmethod
    def for_today(cls, results_dir: Path = RESULTS_DIR) -> Report:
        return cls(results_dir / datetime.now().strftime("%Y-%m-%d"))

    def save(self, section: Section, order: list[str]) -> None:
        """Store `section` (replacing the day's earlier one of that name) and rewrite both files,
        sections in the order of `order`."""
        self.sections[section.name] = section
        ranked = sorted(self.sections.values(), key=lambda s: order.index(s.name) if s.name in order else len(order))
        self.sections = {s.name: s for s in ranked}
        payload = {"machine": {"cores": os.cpu_count(), "memory_gib": round(psutil.virtual_memory().total / 2**30, 1)},
                   "written": now(), "sections": {name: asdict(s) for name, s in self.sections.items()}}
        self.path.write_text(json.dumps(payload, indent=2) + "\n")
        (self.folder / "report.md").write_text(self.markdown())

    def markdown(self) -> str:
        memory = psutil.virtual_memory().total / 2**30
        lines = [f"# lakelab benchmarks, {self.folder.name}", "",
                 f"Machine: {os.cpu_count()} cores, {memory:.0f} GiB, shared. Every figure carries the load "
                 "average (1/5/15 min) and the core count when it was taken: absolute figures move with "
                 "the load, ratios of two sides run interleaved in one process much less.", ""]
        pairs = [(s, f) for s in self.sections.values() for f in s.figures if f.goal]
        if pairs:
            lines += ["## Goals", "", "| benchmark | figure | ours | standard | ratio | goal | met | load 1/5/15, cores |",
                      "|---|---|---|---|---|---|---|---|"]
            lines += [f"| {s.name} | {f.name} | {_number(f.value)} {f.unit} | "
                      f"{_number(f.standard) + ' ' + f.unit if f.standard is not None else '-'} | "
                      f"{f'{f.ratio:.2f}' if f.ratio is not None else '-'} | {f.goal} | "
                      f"{'yes' if f.met else 'no' if f.met is False else '-'} | {_load(f.load)} |" for s, f in pairs]
            lines.append("")
        for section in self.sections.values():
            lines += [f"## {section.title} (`{section.name}`)", "",
                      f"{section.status}; started {section.started}, {section.seconds:.0f} s", ""]
            if section.figures:
                lines += ["| figure | value | standard | ratio | load 1/5/15, cores |", "|---|---|---|---|---|"]
                lines += [f"| {f.name} | {_number(f.value)} {f.unit} | {_standard(f)} | "
                          f"{f'{f.ratio:.2f}' if f.ratio is not None else '-'} | {_load(f.load)} |"
                          for f in section.figures]
                lines.append("")
            lines += [f"- {note}" for note in section.notes]
            if section.notes:
                lines.append("")
            lines += [f"![{plot}]({plot})" for plot in section.plots]
            if section.plots:
                lines.append("")
            if section.memory and section.memory.services_mib:
                m = section.memory
                lines += ["Peak RSS (MiB): " + ", ".join(f"{name} {mib:.0f}" for name, mib in m.services_mib.items())
                          + f"; this benchmark's jobs {m.jobs_mib:.0f}; highest total of one sample "
                          f"{m.total_mib:.0f} ({m.total_mib / 1024:.2f} GiB)", ""]
        return "\n".join(lines)


def now() -> str:
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}" if abs(value) < 10 else f"{value:.1f}"


def _standard(figure: Figure) -> str:
    if figure.standard is None:
        return "-"
    return f"{_number(figure.standard)} {figure.unit} ({figure.standard_name})"


def _load(load: Load) -> str:
    return f"{load.one:.1f}/{load.five:.1f}/{load.fifteen:.1f}, {load.cores}"
