"""The ``sharpen`` command line."""

from __future__ import annotations

import typer

from service.cli import analyze, experiments, plan, report, review, rollout
from service.cli.demo import demo
from service.cli.journal import journal
from service.cli.serve import serve
from service.cli.worker import worker

__all__ = ["app", "main"]

app = typer.Typer(
    name="sharpen",
    help="Online experimentation for refining production ML models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
app.command("serve")(serve)
app.command("worker")(worker)
app.command("apply")(experiments.apply)
app.command("list")(experiments.list_experiments)
app.command("get")(experiments.get)
for _action in ("start", "stop", "ship", "rollback"):
    app.command(_action)(experiments.lifecycle(_action))
app.command("ramp")(rollout.ramp)
app.command("journal")(journal)
app.command("plan")(plan.plan)
app.command("report")(report.report)
app.command("demo")(demo)
app.command("models")(analyze.list_models)
app.command("analyze")(analyze.analyze)
app.command("backtest")(analyze.backtest)
app.command("review")(review.review)


def main() -> None:
    app()
