"""`metarl verdict PATH...`: every stored verdict recomputed from its stored per-seed scores alone.

A meta-train run's verdict (summary.json) keeps its raw per-seed scores, its judging seeds' keys and its
normalization references, so :func:`metarl.app.verdict.reprint` recomputes every number from the file; an eval's
verdict (verdict.json) is recomputed from eval.npz and config.json. A mismatch means the stored verdict is not
what its scores say; ``rewrite`` replaces a verdict of an older protocol with the current one, from the same
scores (nothing is trained).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from metarl.app.evaluation import BEST_HAND_DESIGNED, summary_table, verdict_markdown, verdict_table
from metarl.app.verdict import _close, candidate_label, describe, reprint
from metarl.errors import ConfigError


def reprint_path(path: str | Path, rewrite: bool = False) -> tuple[str, list[str]]:
    """Any stored verdict recomputed from its stored per-seed scores alone: a meta-train run folder (or its
    summary.json), or an eval run folder with a verdict (eval.npz, config.json, verdict.json). Returns the text
    `metarl verdict` prints and the fields where the recomputation differs from what is stored. ``rewrite``:
    store the recomputed verdict in place of the old one (a verdict of an older protocol, re-derived from the
    same scores; nothing is trained)."""
    path = Path(path)
    if path.is_dir() and (path / "verdict.json").is_file() and (path / "eval.npz").is_file():
        return _reprint_eval(path, rewrite)
    summary_path = path / "summary.json" if path.is_dir() else path
    if not summary_path.is_file():
        raise FileNotFoundError(f"{path}: neither a meta-train run (summary.json) nor an eval run with a verdict (verdict.json, eval.npz)")
    summary = json.loads(summary_path.read_text())
    if "verdict" not in summary:
        raise ValueError(f"{summary_path}: the run stored no verdict (verdict.num_seeds 0, or it did not finish)")
    stored = summary["verdict"]
    if "references" not in stored or "normalize" not in stored:
        raise ValueError(f"{summary_path}: a verdict stored before verdicts kept their normalization references cannot be "
                         "recomputed from the file; rerun the run's command to re-judge it")
    label = "learned"
    config_path = summary_path.parent / "config.json"
    if config_path.is_file():
        label = candidate_label(json.loads(config_path.read_text()).get("config", {}))
    texts, mismatches, changed = [], [], False
    # Earlier verdicts first (a run judged on the validation stream, then again on the test stream), each from its scores.
    judged = [*(("earlier_verdicts", i) for i in range(len(summary.get("earlier_verdicts", [])))), ("verdict", None)]
    for field, index in judged:
        stored = summary[field] if index is None else summary[field][index]
        recomputed, differing = reprint(stored)
        prefix = "" if index is None else f"{field}[{index}]."
        mismatches += [prefix + name for name in differing]
        missing = any(set(recomputed["against"][name]) - set(entry) for name, entry in stored["against"].items())
        if rewrite and (differing or missing):  # an older protocol's verdict: store the current one
            changed = True
            if index is None:
                summary["verdict"] = recomputed
            else:
                summary[field][index] = recomputed
        heading = "" if index is None else f"(earlier verdict {index + 1}, on the {stored.get('stream', 'validation')} stream)\n"
        texts.append(heading + describe(recomputed, label))
    if changed:
        summary_path.write_text(json.dumps(summary, indent=2) + "\n")
    return f"{summary_path.parent}\n" + "\n".join(texts), mismatches


def _reprint_eval(run_dir: Path, rewrite: bool = False) -> tuple[str, list[str]]:
    stored = json.loads((run_dir / "verdict.json").read_text())
    config = json.loads((run_dir / "config.json").read_text())["config"]
    data = np.load(run_dir / "eval.npz")
    labels = [str(label) for label in data["objectives"]]
    if not stored:
        return f"{run_dir}\n(no comparisons)", []
    if config.get("verdict_against") == BEST_HAND_DESIGNED:  # per env and N, the best variant without a learned file
        baseline = tuple(bool(h) for h in data["hand_designed"])
    else:
        baseline = labels.index(stored[0]["baseline_objective"])
    rows = verdict_table(np.asarray(data["scores"]), labels, baseline, [str(e) for e in data["envs"]],
                         [int(n) for n in data["lifetimes"]], config.get("equivalence_margin", 0.05), config["heldout"],
                         config.get("statistic", "iqm"))
    mismatches = []
    for index, (old, new) in enumerate(zip(stored, rows, strict=False)):
        for field_name, value in new.items():
            if field_name in old and not _close(old[field_name], value):
                mismatches.append(f"row {index}.{field_name}")
    if len(stored) != len(rows):
        mismatches.append(f"rows: {len(stored)} stored, {len(rows)} recomputed")
    missing = any(set(new) - set(old) for old, new in zip(stored, rows, strict=False))
    if rewrite and (mismatches or missing):  # an older protocol's verdict: store the current one
        (run_dir / "verdict.json").write_text(json.dumps(rows, indent=2) + "\n")
        (run_dir / "summary.md").write_text(summary_table(run_dir / "eval.npz") + "\n" + verdict_markdown(rows))
    return f"{run_dir}\n{verdict_markdown(rows)}", mismatches


def verdict_main(args: list[str], argv: list[str] | None = None) -> int:
    """`metarl verdict PATH...`: every stored verdict recomputed from its per-seed scores; exit 1 when one differs
    from what its file says."""
    rewrite = "--rewrite" in args
    paths = [a for a in args if a != "--rewrite"]
    if not paths or any(a in ("-h", "--help") for a in args):
        print("usage: metarl verdict [--rewrite] PATH...   (meta-train run folders or summary.json files, eval run folders\n"
              "with a verdict)\n\n"
              "Recomputes each stored verdict from its stored per-seed scores alone and prints it; exit 1 if a recomputed\n"
              "number differs from the stored one. --rewrite stores the recomputed verdict instead (a verdict of an older\n"
              "protocol re-derived from the same scores; nothing is trained).")
        return 0 if any(a in ("-h", "--help") for a in args) else 2
    failed = False
    for path in paths:
        try:
            text, mismatches = reprint_path(path, rewrite=rewrite)
        except (FileNotFoundError, ValueError) as error:
            raise ConfigError(f"verdict: {error}") from None
        print(text)
        if mismatches and rewrite:
            print(f"  rewrote the stored verdict (it differed in {', '.join(mismatches[:6])}{' ...' if len(mismatches) > 6 else ''})")
        elif mismatches:
            failed = True
            print(f"  MISMATCH: the stored verdict differs from its scores in {', '.join(mismatches)}", file=sys.stderr)
    return 1 if failed else 0
