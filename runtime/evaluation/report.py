"""An evaluation report as Markdown (for CI summary pages) and as the CLI's lines."""

from __future__ import annotations

from typing import Any

NAMES = {"exact_match": "exact match", "f1": "F1", "accuracy": "accuracy", "pearson": "Pearson",
         "spearman": "Spearman"}


def _cell(value: Any) -> str:
    text = str(value).replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= 60 else text[:59] + "…"


def markdown(report: dict[str, Any]) -> str:
    """The report as Markdown: the metrics side by side, the drop, the disagreements."""
    names = report["metrics"]
    data = report["data"]
    machine = report.get("machine", {})
    lines = [f"# Evaluation of `{report.get('artifact', '?')}` ({report.get('task', '?')})", "",
             f"Data: `{data['file']}` ({data['format']}, {data['examples']} examples, sha256 "
             f"`{data['sha256'][:16]}…`). Metrics in points (x 100); CPU class {machine.get('cpu_class', '?')}, "
             f"threads {machine.get('threads') or 'default'}.", "",
             "| precision | " + " | ".join(NAMES[n] for n in names) + " | ms / example |",
             "|---|" + "---|" * (len(names) + 1)]
    base = report["baseline"]
    for precision, figures in report["results"].items():
        cells = []
        for n in names:
            cell = f"{figures[n]:.2f}"
            if precision != base:
                cell += f" ({-report['drop'][precision][n]:+.2f})"
            cells.append(cell)
        lines.append(f"| {precision} | " + " | ".join(cells) + f" | {figures['ms_per_example']:.2f} |")
    dis = report.get("disagreements")
    if dis is not None:
        others = [p for p in report["results"] if p != base]
        lines += ["", f"{dis['count']} of {dis['of']} examples answered differently by {base} and {others[0]}"
                  + (" (by more than 0.05)" if report["kind"] == "regression" else "") + "."]
        if dis["examples"]:
            lines += ["", f"| where | input | gold | {base} | {others[0]} |", "|---|---|---|---|---|"]
            for row in dis["examples"]:
                lines.append(f"| {_cell(row['where'])} | {_cell(row['input'])} | {_cell(row['gold'])} | "
                             f"{_cell(row[base])} | {_cell(row[others[0]])} |")
    record = report.get("export_record")
    if record is not None:
        lines += ["", "Export's accuracy record: " + record_line(record)]
    gate = report.get("gate")
    if gate is not None:
        lines += ["", gate_line(gate)]
    return "\n".join(lines) + "\n"


def record_line(record: dict[str, Any]) -> str:
    if not record["same_data"]:
        return "measured on other data (checksum differs); not compared."
    if "equal" not in record:
        return "same data; run fp32 and int8 to compare."
    figures = ", ".join(f"{p} {record['recorded'][p]:.2f}" for p in ("fp32", "int8"))
    return (f"same data; recorded {figures}: " + ("equal to this run" if record["equal"] else "DIFFERENT from this run")
            + f"; drop {'within' if record['within_max_drop'] else 'OVER'} its --max-drop {record['max_drop']}.")


def gate_line(gate: dict[str, Any]) -> str:
    verdict = "FAILED" if gate["failed"] else "passed"
    return (f"Gate {verdict}: {gate['precision']} loses {gate['drop']:.2f} points of {NAMES[gate['metric']]} "
            f"(limit {gate['max_drop']:g}).")


def summary_lines(report: dict[str, Any]) -> list[str]:
    """The CLI's human lines: one a precision, then the drop and the disagreements."""
    names = report["metrics"]
    out = [f"{report['data']['file']}: {report['data']['examples']} examples ({report['data']['format']}), "
           f"{report['task']}"]
    base = report["baseline"]
    for precision, figures in report["results"].items():
        values = ", ".join(f"{NAMES[n]} {figures[n]:.2f}" for n in names)
        drop = ""
        if precision != base:
            drop = " (drop " + ", ".join(f"{report['drop'][precision][n]:+.2f}" for n in names) + ")"
        out.append(f"  {precision:<5} {values}{drop}  {figures['ms_per_example']:.2f} ms/example")
    dis = report.get("disagreements")
    if dis is not None:
        out.append(f"  {dis['count']} of {dis['of']} examples answered differently")
    if report.get("export_record") is not None:
        out.append("  export record: " + record_line(report["export_record"]))
    return out
