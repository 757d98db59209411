"""`lakelab bench [NAME...]` (and `make bench`): run the benchmarks on the running stack and write
`bench/results/<date>/report.md` + `report.json` + PNG plots.

Each benchmark measures our way and, where there is one, the standard alternative in the same
process, interleaved, so that both sides see the same machine; every figure carries the load
average and the core count. `startup` needs the stack down, the others need it up: a benchmark
whose condition does not hold is reported as skipped, with the command that runs it.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from bench.report import Figure, Load, MemoryWatch, Report, Section, now
from lakelab.console import console
from lakelab.settings import Settings, get_settings
from services import compose, supervisor


@dataclass(frozen=True)
class Benchmark:
    name: str
    title: str
    module: str           # has `run(bench: Bench) -> None`
    needs_stack: bool = True


BENCHMARKS = [
    Benchmark("api", "Query API: Nginx + API against the Trino client", "bench.api"),
    Benchmark("lab_b", "Lab B: Firehose delivery against a plain consumer", "bench.lab_b"),
    Benchmark("ingest", "Lab A: the dynamic-schema job against Hudi's streaming sink", "bench.ingest"),
    Benchmark("cdc", "Lab D: the CDC sink against Hudi's Debezium payload", "bench.cdc"),
    Benchmark("aws_api", "The AWS endpoint against Kafka and Trino", "bench.aws_api"),
    Benchmark("workflow", "Lab C: upload to table visible in Trino", "bench.workflow"),
    Benchmark("startup", "Startup: the whole stack against its slowest service", "bench.startup", needs_stack=False),
]
ORDER = [b.name for b in BENCHMARKS]


class Bench:
    """What a benchmark works with: the settings, the size of its inputs (`smoke`: tiny, for the
    test that runs the command end to end), its section of the report, where its plots go, and the
    progress line."""

    def __init__(self, settings: Settings, section: Section, folder: Path, smoke: bool,
                 progress: Progress, task: TaskID) -> None:
        self.settings, self.section, self.folder, self.smoke = settings, section, folder, smoke
        self._progress, self._task = progress, task

    @property
    def console(self) -> Console:
        return self._progress.console

    def step(self, text: str) -> None:
        """Say what the benchmark is doing now (the progress line)."""
        self._progress.update(self._task, description=f"[bold]{self.section.name}[/]: {text}")

    def figure(self, name: str, value: float | None, unit: str, *, standard: float | None = None,
               standard_name: str = "", at_least: float | None = None, at_most: float | None = None) -> Figure:
        """Record a figure with the load now. With `standard` (the alternative's value from this run)
        the ratio is ours over it, and the bounds are on the ratio; otherwise on the value."""
        ratio = value / standard if value is not None and standard else None
        judged = ratio if standard is not None else value
        goal, met = "", None
        if at_least is not None or at_most is not None:
            what = "ratio" if standard is not None else ""
            goal = " and ".join(f"{what} {sign} {bound:g}{'' if what else ' ' + unit}".strip()
                                for sign, bound in (("≥", at_least), ("≤", at_most)) if bound is not None)
            met = judged is not None and (at_least is None or judged >= at_least) and (
                at_most is None or judged <= at_most)
        figure = Figure(name, value, unit, Load.now(), standard, standard_name, ratio, goal, met)
        self.section.figures.append(figure)
        self.console.print(f"  {figure.describe()}", highlight=False)
        return figure

    def note(self, text: str) -> None:
        self.section.notes.append(text)
        self.console.print(f"  [dim]{text}[/]", highlight=False)

    def save_plot(self, figure, name: str) -> None:
        """Lay out a matplotlib figure, write it as the section's plot `name` and close it."""
        from matplotlib import pyplot  # only a benchmark that plots pays for importing matplotlib

        figure.tight_layout()
        figure.savefig(self.plot_path(name), dpi=110)
        pyplot.close(figure)

    def plot_path(self, name: str) -> Path:
        """Where the benchmark writes its plot `name` (a PNG), listed in its section."""
        path = self.folder / f"{self.section.name}_{name}.png"
        self.section.plots.append(path.name)
        return path


def _stack_state(settings: Settings) -> tuple[list[str], list[str]]:
    """(services running, services not running): natively as the supervisor knows them, in compose
    mode as the containers are; an optional service (JupyterLab) that is not running is not missing."""
    if settings.mode == "compose":
        running = [c.service for c in compose.status_of(settings) if c.state == "running"]
        return running, [name for name in compose.default_services() if name not in running]
    running = [s.name for s in supervisor.SERVICES if supervisor.running_pid(settings, s.name)]
    return running, [s.name for s in supervisor.SERVICES if s.name not in running and not s.optional]


def _unmet_condition(benchmark: Benchmark, settings: Settings) -> str | None:
    running, stopped = _stack_state(settings)
    if benchmark.needs_stack and stopped:
        return (f"needs the stack up ({', '.join(stopped)} not running): "
                f"`lakelab up`, then `lakelab bench {benchmark.name}`")
    if not benchmark.needs_stack and running:
        return (f"needs the stack down ({', '.join(running)} running): "
                f"`lakelab down`, then `lakelab bench {benchmark.name}`, then `lakelab up`")
    return None


def bench(
    names: Annotated[Optional[list[str]], typer.Argument(help=f"benchmarks to run (default: all): {', '.join(ORDER)}",
                                                         show_default=False)] = None,
    smoke: Annotated[bool, typer.Option("--smoke", help="tiny inputs: checks the command end to end in about "
                                                        "three minutes (Spark's and Hudi's first commits are most "
                                                        "of it), figures mean nothing")] = False,
    results: Annotated[Optional[Path], typer.Option(help="folder of the dated report folders "
                                                         "(default bench/results)")] = None,
) -> None:
    """Run the benchmarks side by side with the standard alternatives; write report.md, report.json
    and PNG plots to bench/results/<date>/."""
    unknown = sorted(set(names or []) - set(ORDER))
    if unknown:
        raise typer.BadParameter(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(ORDER)}")
    selected = [b for b in BENCHMARKS if not names or b.name in names]
    settings = get_settings()
    report = Report.for_today(results) if results else Report.for_today()
    began = time.monotonic()
    failed = []
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        overall = progress.add_task(f"{len(selected)} benchmarks", total=len(selected))
        for benchmark in selected:
            section = Section(benchmark.name, benchmark.title, started=now())
            progress.console.rule(f"{benchmark.name}: {benchmark.title}  [{Load.now()}]")
            task = progress.add_task(f"[bold]{benchmark.name}[/]: starting", total=None)
            section_began = time.monotonic()
            reason = _unmet_condition(benchmark, settings)
            if reason:
                section.status = "skipped"
                section.notes.append(f"skipped: {reason}")
                progress.console.print(f"  [yellow]skipped[/]: {reason}", highlight=False)
            else:
                watch = MemoryWatch(settings).start()
                try:
                    import_module(benchmark.module).run(Bench(settings, section, report.folder, smoke, progress, task))
                    section.status = "done"
                except Exception as exc:  # noqa: BLE001 - one benchmark failing must not lose the others
                    section.status = f"failed: {type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
                    failed.append(benchmark.name)
                    progress.console.print(f"  [red]{section.status}[/]\n{traceback.format_exc(limit=8)}",
                                           highlight=False)
                finally:
                    section.memory = watch.stop()
            section.seconds = round(time.monotonic() - section_began, 1)
            report.save(section, ORDER)
            progress.remove_task(task)
            progress.advance(overall)
    _print_goals(report, [b.name for b in selected])
    console.print(f"report: {report.folder / 'report.md'} ({time.monotonic() - began:.0f} s)")
    if failed:
        raise typer.Exit(1)


def _print_goals(report: Report, names: list[str]) -> None:
    table = Table("benchmark", "figure", "ours", "standard", "ratio", "goal", "met", "load", title="goals")
    for name in names:
        section = report.sections[name]
        for f in section.figures:
            if f.goal:
                table.add_row(name, f.name, f"{f.value:.4g} {f.unit}" if f.value is not None else "-",
                              f"{f.standard:.4g}" if f.standard is not None else "-",
                              f"{f.ratio:.2f}" if f.ratio is not None else "-", f.goal,
                              "[green]yes[/]" if f.met else "[red]no[/]", str(f.load))
    if table.rows:
        console.print(table)
