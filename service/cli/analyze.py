"""Model analysis and backtests in the terminal: ``sharpen models``, ``analyze``, ``backtest``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import typer
import yaml
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from service import format as fmt
from service.cli._http import AdminAPI, fail

__all__ = [
    "analyze",
    "backtest",
    "list_models",
    "read_history",
    "render_analysis",
    "render_backtest",
    "render_errors",
]

console = Console()

UrlOpt = typer.Option(
    None, "--url", help="Service URL [SHARPEN_URL, default http://127.0.0.1:8000]"
)
KeyOpt = typer.Option(None, "--api-key", help="Admin key [SHARPEN_API_KEY, else dev keys]")
DASH = fmt.MISSING
_num = fmt.as_float


def _pct(value: Any, digits: int = 1) -> str:
    return fmt.pct(value, sign=False, digits=digits)


def _rate(rate: dict[str, Any] | None) -> str:
    if not rate or _num(rate.get("value")) is None:
        return DASH
    lo, hi = rate.get("ci") or [None, None]
    return f"{_pct(rate['value'])} [{_pct(lo)}, {_pct(hi)}]"


def _attrs(attributes: dict[str, Any] | None) -> str:
    if not attributes:
        return "(everything else)"
    return " & ".join(f"{k}={v}" for k, v in attributes.items())


_p = fmt.p_value


def _num_ci(block: dict[str, Any] | None) -> str:
    """A mean that is not a rate (log loss, absolute error): 0.589 [0.58, 0.60]."""
    if not block or _num(block.get("value")) is None:
        return DASH
    lo, hi = block.get("ci") or [None, None]
    return f"{fmt.number(block['value'])} [{fmt.number(lo)}, {fmt.number(hi)}]"


def _fixed(block: dict[str, Any]) -> str:
    est = _num(block.get("estimate"))
    if est is None:
        return f"up to {fmt.count(block.get('upper_bound', 0))} (no estimate)"
    lo, hi = (_num(x) for x in block.get("ci") or [None, None])
    ci = "" if lo is None or hi is None else f" [{fmt.count(lo)}, {fmt.count(hi)}]"
    return f"{fmt.count(est)}{ci}"


def _money(value: dict[str, Any] | None) -> str:
    if not value:
        return DASH
    per_year = value.get("per_year") or {}
    est = _num(per_year.get("estimate"))
    if est is None:
        return DASH
    lo, hi = (_num(x) for x in per_year.get("ci") or [None, None])
    cur = value.get("currency") or ""
    ci = "" if lo is None or hi is None else f" [{fmt.count(lo)}, {fmt.count(hi)}]"
    return f"{fmt.count(est)}{ci} {cur}/yr".strip()


def render_analysis(report: dict[str, Any], out: Console, *, rows: int = 10) -> None:
    """The analysis report as tables: overall, levers, slices, segments, time, calibration."""
    ov = report["overall"]
    out.print(
        f"[bold]{report.get('model', 'model')}[/]  {fmt.count(ov['records'])} records, "
        f"{fmt.count(ov['labelled'])} labelled, {fmt.count(ov['errors'])} errors  "
        f"error rate {_rate(ov['error_rate'])}  ({ov['mode']} predictions)"
    )
    loss = ov.get("loss") or "mean loss"
    quality = f"accuracy {_rate(ov['accuracy'])}  "
    if ov["mode"] != "regression":
        quality += f"precision {_rate(ov.get('precision'))}  recall {_rate(ov.get('recall'))}  "
    out.print(quality + f"{loss} {_num_ci(ov['mean_loss'])}")
    ref = report.get("reference") or {}
    if ref.get("source"):
        out.print(f"[dim]reference: {ref['source']}, {fmt.count(ref.get('records', 0))} rows[/]")
    elif ref.get("note"):
        out.print(f"[dim]reference: {ref['note']}[/]")
    rec = report.get("recommendation")
    if rec:
        out.print(
            Panel(
                f"[bold]{rec['lever']}[/]: {rec['action']}\n{rec['why']}",
                title="try first",
                border_style="green",
            )
        )
    levers = Table(
        "#",
        "lever",
        "errors",
        "share",
        "expected fixed [95% CI]",
        "value",
        "evidence",
        "examples",
        title="levers by errors they are expected to fix",
    )
    for row in report["levers"]:
        levers.add_row(
            str(row["rank"]),
            row["lever"],
            fmt.count(row["errors"]),
            _pct(row["share"]),
            _fixed(row["expected_fixed"]),
            _money(row.get("value")),
            "\n".join(row["evidence"]),
            ", ".join(row.get("examples") or []) or DASH,
        )
    out.print(levers)
    out.print(
        f"[dim]list the errors behind a lever: sharpen analyze {report.get('model', 'NAME')} "
        "--errors LEVER[/]"
    )
    slices = Table(
        "slice",
        "records",
        "error rate [95% CI]",
        "share of errors",
        "lift",
        "p (adj.)",
        title="where errors concentrate (significant slices)",
    )
    for s in report["slices"][:rows]:
        slices.add_row(
            _attrs(s["attributes"]),
            fmt.count(s["records"]),
            _rate({"value": s["error_rate"], "ci": s["ci"]}),
            _pct(s["error_share"]),
            f"{s['lift']:.2f}x" if _num(s["lift"]) is not None else DASH,
            _p(s["p_value"]),
        )
    if not report["slices"]:
        slices.add_row("no significant slice", DASH, DASH, DASH, DASH, DASH)
    out.print(slices)
    search = report.get("slice_search") or {}
    out.print(
        f"[dim]{search.get('examined', 0)} slices of >= {search.get('min_records', '?')} records "
        f"examined, {search.get('significant', 0)} significant after {search.get('correction')} "
        f"correction at alpha {search.get('alpha')}[/]"
    )
    _cover(report.get("cover") or {}, out)
    _segments(report, out, rows)
    _time(report, out)
    _calibration(report["calibration"], out)
    if report["categories"]:
        cats = Table("category", "records", "errors", "share of errors", title="error categories")
        for c in report["categories"][:rows]:
            cats.add_row(
                c["category"],
                fmt.count(c["records"]),
                fmt.count(c["errors"]),
                _pct(c["error_share"]),
            )
        out.print(cats)


def _cover(cover: dict[str, Any], out: Console) -> None:
    picked = cover.get("slices") or []
    target = _pct(cover.get("target"), 0)
    if not picked:
        out.print(f"[dim]no set of significant slices holds {target} of the errors[/]")
        return
    last = picked[-1]
    verb = "hold" if cover.get("reached") else "hold only"
    out.print(
        f"{len(picked)} slices {verb} {_pct(last['cumulative_error_share'])} of errors in "
        f"{_pct(last['cumulative_record_share'])} of records (target {target}): "
        + "; ".join(_attrs(s["attributes"]) for s in picked)
    )


def _segments(report: dict[str, Any], out: Console, rows: int) -> None:
    supported = [s for s in report["segments"] if not s["low_support"]]
    worst = sorted(supported, key=lambda s: -(_num(s["error_rate"]["value"]) or 0.0))[:rows]
    table = Table(
        "segment",
        "labelled",
        "error rate [95% CI]",
        "precision",
        "recall",
        title="worst segments (enough support)",
    )
    for s in worst:
        table.add_row(
            _attrs(s["attributes"]),
            fmt.count(s["labelled"]),
            _rate(s["error_rate"]),
            _pct(s.get("precision", {}).get("value")),
            _pct(s.get("recall", {}).get("value")),
        )
    out.print(table)
    small = len(report["segments"]) - len(supported)
    if small:
        out.print(f"[dim]{small} segments below min_support left out: too small to read[/]")


def _time(report: dict[str, Any], out: Console) -> None:
    table = Table("dimension", "value", "labelled", "error rate [95% CI]", title="by time (UTC)")
    for dim in ("day", "weekday", "hour"):
        for r in (r for r in report["time"] if r["dimension"] == dim):
            table.add_row(dim, str(r["value"]), fmt.count(r["labelled"]), _rate(r["error_rate"]))
    out.print(table)


def _calibration(cal: dict[str, Any], out: Console) -> None:
    if not cal.get("records"):
        out.print("[dim]calibration: no scores or confidences to calibrate[/]")
        return
    probability = cal.get("of") == "probability"
    table = Table(
        "predicted" if probability else "confidence",
        "records",
        "mean predicted" if probability else "mean conf.",
        "share positive [95% CI]" if probability else "accuracy [95% CI]",
        "gap",
        "status",
        title="calibration (reliability diagram)",
    )
    for b in cal["bins"]:
        if not b["records"]:
            continue
        style = "red" if b["status"] != "ok" else ""
        table.add_row(
            f"{b['lower']:.1f}-{b['upper']:.1f}",
            fmt.count(b["records"]),
            _pct(b["mean_predicted"]),
            _rate(b["observed"]),
            _pct(b["gap"]),
            f"[{style}]{b['status']}[/]" if style else b["status"],
        )
    out.print(table)
    if cal.get("ece") is not None:
        out.print(
            f"ECE {cal['ece']:.4f} (noise floor {cal['ece_noise']:.4f}), verdict "
            f"[bold]{cal['verdict']}[/]"
        )


def list_models(url: str = UrlOpt, api_key: str = KeyOpt) -> None:
    """List monitored models."""
    with AdminAPI(url, api_key) as api:
        models = api.request("GET", "/v1/models")["models"]
    table = Table(
        "model", "records", "accepted", "labelled", "late labels", "reference", title="models"
    )
    for m in models:
        table.add_row(
            m["name"],
            fmt.count(m["records"]),
            fmt.count(m["accepted"]),
            fmt.count(m.get("labelled", 0)),
            fmt.count(m["labels"]),
            "yes" if m["has_reference"] else "-",
        )
    console.print(table)


def analyze(
    name: str = typer.Argument(..., help="Model name"),
    url: str = UrlOpt,
    api_key: str = KeyOpt,
    as_json: bool = typer.Option(False, "--json", help="Print the raw JSON"),
    min_support: int = typer.Option(30, help="Labelled records a row needs to be read"),
    max_order: int = typer.Option(3, min=1, max=3, help="Attributes per slice (1-3)"),
    alpha: float = typer.Option(0.05, help="Significance level of slice discovery"),
    since: str = typer.Option(None, help="Only records from this time on (ISO 8601)"),
    until: str = typer.Option(None, help="Only records before this time (ISO 8601)"),
    rows: int = typer.Option(10, help="Rows per table"),
    errors: str = typer.Option(
        None, "--errors", help="List the errors behind one lever (or 'all') instead"
    ),
    segment: str = typer.Option(None, help="With --errors: only attribute:value"),
    limit: int = typer.Option(20, help="With --errors: errors per page"),
    cursor: str = typer.Option(None, help="With --errors: the page after this cursor"),
) -> None:
    """Where a production model errs, and which lever to pull first."""
    if errors is not None:
        _errors(name, url, api_key, errors, segment, limit, cursor, as_json)
        return
    params: dict[str, Any] = {"min_support": min_support, "max_order": max_order, "alpha": alpha}
    if since:
        params["since"] = since
    if until:
        params["until"] = until
    report = _fetch(url, api_key, f"/v1/models/{name}/analysis", params, as_json)
    if report is not None:
        render_analysis(report, console, rows=rows)


def _fetch(
    url: str, api_key: str, path: str, params: dict[str, Any], as_json: bool
) -> dict[str, Any] | None:
    """GET an admin document; with ``as_json`` print it raw and return None."""
    with AdminAPI(url, api_key) as api:
        doc: dict[str, Any] = api.request("GET", f"{path}?{urlencode(params)}")
    if as_json:
        console.print_json(json.dumps(doc))
        return None
    return doc


def _errors(
    name: str,
    url: str,
    api_key: str,
    lever: str,
    segment: str | None,
    limit: int,
    cursor: str | None,
    as_json: bool,
) -> None:
    params: dict[str, Any] = {"limit": limit}
    if lever != "all":
        params["lever"] = lever
    if segment:
        params["segment"] = segment
    if cursor:
        params["cursor"] = cursor
    page = _fetch(url, api_key, f"/v1/models/{name}/errors", params, as_json)
    if page is not None:
        render_errors(page, console, title=f"{name}: errors behind {lever}")


def render_errors(page: dict[str, Any], out: Console, *, title: str) -> None:
    """One page of ``GET /v1/models/{name}/errors`` and how to get the next."""
    table = Table("record", "lever", "evidence", "segment", title=title)
    for e in page["errors"]:
        evidence = ", ".join(f"{k}={_evidence_value(v)}" for k, v in e["evidence"].items())
        table.add_row(e["record_id"], e["lever"], evidence or DASH, _attrs(e["segment"]))
    if not page["errors"]:
        table.add_row("no errors match", DASH, DASH, DASH)
    out.print(table)
    out.print(f"[dim]{fmt.count(page['total'])} errors match[/]")
    if page.get("next"):
        out.print(f"next page: --cursor {page['next']}")


def _evidence_value(value: Any) -> str:
    if isinstance(value, list):
        return "+".join(str(v) for v in value) or DASH
    return DASH if value is None else str(value)


def read_history(path: Path) -> dict[str, Any]:
    """The records part of a backtest body from a CSV, JSON, JSON lines or Parquet file."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return {"csv": path.read_text()}
    if suffix == ".parquet":
        try:
            import pyarrow.parquet as pq  # type: ignore[import-not-found, unused-ignore]
        except ImportError:
            fail("reading Parquet needs pyarrow: pip install pyarrow (or export to CSV)")
        rows: list[dict[str, Any]] = pq.read_table(path).to_pylist()
        return {"rows": rows}
    text = path.read_text()
    try:
        if suffix == ".jsonl":
            return {"records": [json.loads(line) for line in text.splitlines() if line.strip()]}
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        fail(f"{path} is not valid JSON: {exc}")
    if isinstance(data, dict) and "records" in data:
        data = data["records"]
    if not isinstance(data, list):
        fail(f"{path} must hold a list of records (or {{'records': [...]}})")
    return {"records": data}


def render_backtest(result: dict[str, Any], out: Console) -> None:
    """The backtest verdict, loudly marked as historical evidence."""
    verdict = result["verdict"]
    journal = result.get("journal")
    if result.get("dry_run"):
        out.print("[dim]dry run: not journaled[/]")
    elif journal:
        what = "journaled as" if journal.get("added") else "updated journal entry"
        out.print(f"[dim]{what} {journal['id']}[/]")
    approved = verdict["approved"]
    out.print(
        Panel(
            f"[bold]{'APPROVED' if approved else 'NOT APPROVED'}[/] (action: {verdict['action']})"
            f"\n{verdict['statement']}",
            title="backtest - historical evidence",
            border_style="green" if approved else "red",
        )
    )
    for reason in verdict["reasons"]:
        out.print(f"  - {reason}")
    metrics = Table(
        "metric",
        "role",
        "baseline",
        "candidate",
        "relative [CI]",
        "p",
        "status",
        title=f"{result['candidate']} vs {result['baseline']}, {fmt.count(result['records'])} "
        f"records, alpha {verdict['bar']['alpha']:g}",
    )
    for m in result["metrics"]:
        rel = m["relative"]
        lo, hi = rel["ci"]
        metrics.add_row(
            m["metric"],
            m["role"],
            _fmt(m["baseline"]["mean"]),
            _fmt(m["treatment"]["mean"]),
            f"{_signed(rel['estimate'])} [{_signed(lo)}, {_signed(hi)}]",
            _p(m["p_value"]),
            m["status"],
        )
    out.print(metrics)
    segs = Table("segment", "records", "checks", "non-inferior", title="segments (stricter bar)")
    for s in result["segments"]:
        checks = ", ".join(f"{c['metric']} {c['status']}" for c in s["checks"]) or "too small"
        segs.add_row(
            _attrs(s["segment"]),
            fmt.count(s["records"]),
            checks,
            "yes" if s["non_inferior"] else "[red]no[/]",
        )
    out.print(segs)


_fmt = fmt.number


def _signed(value: Any) -> str:
    return fmt.pct(value, digits=2)


def backtest(
    path: Path = typer.Argument(
        ..., exists=True, dir_okay=False, help="History: .csv, .json, .jsonl or .parquet"
    ),
    spec: Path = typer.Option(None, "--spec", exists=True, dir_okay=False, help="Spec file"),
    experiment: str = typer.Option(None, help="Or the key of a stored experiment"),
    candidate: str = typer.Option(None, help="The candidate variant, if the spec has several"),
    alpha: float = typer.Option(None, help="The bar's alpha (default: the spec's halved)"),
    min_segment_records: int = typer.Option(50, help="Smaller segments are listed, not judged"),
    url: str = UrlOpt,
    api_key: str = KeyOpt,
    as_json: bool = typer.Option(False, "--json", help="Print the raw JSON"),
    dry_run: bool = typer.Option(False, "--dry-run", help="Judge without journaling"),
) -> None:
    """Judge a candidate on historical records of both models (stricter bar; journaled).

    FILE holds one record per past input with the truth and both models' outputs.
    CSV (or Parquet) columns: record_id, timestamp, label, <variant>.prediction,
    <variant>.confidence, <variant>.<value> for any other per-variant number; every
    other column is an attribute (a segment). JSON / JSON lines: records like
    {"record_id", "timestamp", "label", "attributes": {...}, "variants": {"<variant>":
    {"prediction", "confidence", "values": {...}}}}.

    The spec's metrics may use, per record and variant: records, served, correct,
    error, true_positive, false_positive, false_negative, true_negative, flagged,
    actual_positive, log_loss (scored predictions), or any of the variant's values.
    A repeat of the same inputs updates its journal entry; --dry-run writes none.
    """
    if (spec is None) == (experiment is None):
        fail("give exactly one of --spec FILE or --experiment KEY")
    body: dict[str, Any] = {"source": path.name, "min_segment_records": min_segment_records}
    if spec is not None:
        try:
            body["spec"] = yaml.safe_load(spec.read_text())
        except yaml.YAMLError as exc:
            fail(f"{spec} is not valid YAML: {exc}")
    else:
        body["experiment"] = experiment
    if candidate:
        body["candidate"] = candidate
    if alpha is not None:
        body["alpha"] = alpha
    if dry_run:
        body["dry_run"] = True
    body.update(read_history(path))
    with AdminAPI(url, api_key) as api:
        result = api.request("POST", "/v1/backtest", body)
    if as_json:
        console.print_json(json.dumps(result))
        return
    render_backtest(result, console)
