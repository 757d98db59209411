"""`lakelab lab-a ...`: dynamic schema, in-place updates (the main demo).

    lakelab lab-a demo                         # the whole lab on the running stack, step by step
    lakelab lab-a generate --profile iot_10    # the KDG stand-in: IoT records into the lab's topic
    lakelab lab-a stream                       # the streaming job: topic -> Hudi table (long-running)
    lakelab lab-a check                        # which steps of the lab are done, the hint for the next
    lakelab lab-a reset                        # the lab back to its start (topics, table, checkpoint)
"""

from __future__ import annotations

from typing import Annotated

import typer

from labs.lab_a.check import check
from labs.lab_a.reset import reset_command
from lakelab.cli import lazy_commands
from lakelab.console import console
from lakelab.settings import get_settings
from producers.lab_a import generate

# The Spark job loads pyspark, which takes seconds: it is imported only when it runs.
app = typer.Typer(cls=lazy_commands({"stream": "spark_jobs.lab_a:stream"}), no_args_is_help=True,
                  help="Lab A: IoT records with a changing schema upserted into Hudi, read in Trino.")
app.command("generate")(generate)
app.command("check")(check)
app.command("reset")(reset_command)


@app.command()
def demo(
    keep: Annotated[bool, typer.Option("--keep", help="continue the existing table and checkpoint")] = False,
    rate: Annotated[float, typer.Option(help="generator records per second")] = 50.0,
    trigger: Annotated[float, typer.Option(help="streaming micro-batch interval, seconds")] = 5.0,
) -> None:
    """Lab A on the running stack: IoT records with a changing schema upserted into Hudi, read in Trino."""
    from labs.lab_a.demo import run  # runs Spark: see above

    run(get_settings(), keep=keep, rate=rate, trigger=trigger, console=console)
