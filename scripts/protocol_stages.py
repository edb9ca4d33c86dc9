"""Where a protocol's time went, from its ``protocol.log``: wall time per stage and the work
(process seconds) inside each.

    python scripts/protocol_stages.py outputs/protocol/runs/<run> [<run> …]

Stages, in wall-clock order: the first wave (every searched row's study and every grid-searched
reference: in parallel under ``protocol.workers``), the epoch-cap extensions, the refits (every
row × search × seed, then one test each), and the bootstrap, verdicts and files. The work
columns add up the trials' own times per search (``trial i/n · … · 5.2 s``), the pruned
trials among them, and the references' and refits' spans, whichever process ran them: with
N workers the wall time of a wave is about its work / N. A continued protocol's log holds
every process's lines; its "wall" counts the pauses between them. Prints a Markdown table per
run; the last line is one JSON object.
"""

from __future__ import annotations

import json
import re
import sys
from datetime import datetime
from pathlib import Path

LINE = re.compile(
    r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\]\[[^\]]*\]\[\w+\] - \[([^\]]*)\] (.*)$"
)
TRIAL = re.compile(r"^(?:search seed (\d+): )?trial \d+/\d+( pruned)?.* · ([0-9.]+) s$")
REFERENCE_START = re.compile(r"^references: (\w+) \(preprocessing on validation\)$")
REFERENCE_END = re.compile(r"^(\w+): val [0-9.]+ with ")
REFIT_START = re.compile(
    r"^(search seed \d+: )?refit `([^`]+)` on trainval for seeds \[(\d+)\], then test$"
)
REFIT_END = re.compile(r"^(search seed \d+: )?`([^`]+)` seed (\d+): test ZSL")


def parse(log: Path) -> list[tuple[datetime, str, str]]:
    """(time, stage label, message) of every line of the protocol's own logger."""
    lines = []
    for text in log.read_text(errors="replace").splitlines():
        match = LINE.match(text)
        if match and "][src.protocol][" in text:
            when = datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S,%f")
            lines.append((when, match[2], match[3]))
    return lines


def stages(folder: Path) -> dict:
    log = folder / "protocol.log"
    if not log.is_file():
        raise SystemExit(f"{folder}: no protocol.log: give a protocol run folder")
    lines = parse(log)
    if not lines:
        raise SystemExit(f"{log}: no line of the protocol's logger")
    start, end = lines[0][0], lines[-1][0]

    def first(predicate, after: datetime = start) -> datetime | None:
        return next((t for t, label, msg in lines if t >= after and predicate(label, msg)), None)

    serial = first(lambda label, msg: label.startswith("stage 1/"))
    refits = first(lambda label, msg: "tasks on" in msg and "refit" in msg) or first(
        lambda label, msg: label.startswith("stage") and REFIT_START.match(msg)
    )
    report = first(lambda label, msg: "bootstrap intervals and paired comparisons" in msg)
    marks = [start, serial or refits or report or end, refits or report or end, report or end, end]
    names = [
        "first wave: searches and references",
        "epoch-cap extensions",
        "refits",
        "bootstrap, verdicts, files",
    ]
    wall = {
        n: (b - a).total_seconds() for n, a, b in zip(names, marks[:-1], marks[1:], strict=True)
    }

    searches: dict[int, dict] = {}
    open_refs: dict[str, datetime] = {}
    open_refits: dict[tuple, datetime] = {}
    references = refit_work = 0.0
    n_refits = 0
    for when, _label, msg in lines:
        if match := TRIAL.match(msg):
            search = searches.setdefault(
                int(match[1] or 0), {"trials": 0, "work_s": 0.0, "pruned": 0}
            )
            search["trials"] += 1
            search["work_s"] += float(match[3])
            search["pruned"] += bool(match[2])
        elif match := REFERENCE_START.match(msg):
            open_refs[match[1]] = when
        elif (match := REFERENCE_END.match(msg)) and match[1] in open_refs:
            references += (when - open_refs.pop(match[1])).total_seconds()
        elif match := REFIT_START.match(msg):
            open_refits[match.groups()] = when
        elif (match := REFIT_END.match(msg)) and match.groups() in open_refits:
            refit_work += (when - open_refits.pop(match.groups())).total_seconds()
            n_refits += 1
    return {
        "run": str(folder),
        "wall_s": (end - start).total_seconds(),
        "stages_wall_s": wall,
        "searches": {str(k): v for k, v in sorted(searches.items())},
        "references_work_s": references,
        "refits": n_refits,
        "refits_work_s": refit_work,
    }


def table(result: dict) -> str:
    rows = ["| stage | wall | work inside it |", "|---|---|---|"]
    work = {
        "first wave: searches and references": "; ".join(
            [
                f"search {k}: {v['trials']} trials, {v['work_s']:.0f} s ({v['pruned']} pruned)"
                for k, v in result["searches"].items()
            ]
            + [f"references {result['references_work_s']:.0f} s"]
        ),
        "refits": f"{result['refits']} refits, {result['refits_work_s']:.0f} s",
    }
    for name, seconds in result["stages_wall_s"].items():
        rows.append(f"| {name} | {seconds:.0f} s | {work.get(name, '')} |")
    rows.append(f"| **total** | **{result['wall_s']:.0f} s** | |")
    return "\n".join(rows)


def main(folders: list[str]) -> list[dict]:
    results = [stages(Path(folder)) for folder in folders]
    for result in results:
        print(f"{result['run']}\n\n{table(result)}\n")
    print(json.dumps(results))
    return results


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    main(sys.argv[1:])
