"""The temporally-aware study's tables, from its stored run folders alone (results/ta_study by default).

    metarl sweep sweeps/ta_study.toml               # meta-train the three arms (each ends with its test-seed verdict)
    python experiments/ta_study.py                  # writes results/ta_study/study.{md,json}

Arms: LPO (``lpo_s<k>``), TA-LPO from scratch (``ta_lpo_s<k>``) and TA-LPO warm-started from LPO
(``ta_lpo_warm_s<k>``), k = meta-seed. Per run: its meta-training verdict (summary.json: test seeds at the
meta-training lifetimes, against PPO at the same settings and the uncornered tuned PPO), the temporal variation of
its learned drift (metarl.analysis.drift) and its wall time. From the eval (every objective on the same test
seeds, paired): per env and lifetime N each run against PPO and DPO, and each TA-LPO against the LPO of its own
meta-seed, with metarl's verdict words; per arm the count of meta-seeds with each word.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np

ARMS = {"LPO": re.compile(r"^lpo_s\d+$"), "TA-LPO (scratch)": re.compile(r"^ta_lpo_s\d+$"),
        "TA-LPO (warm from LPO)": re.compile(r"^ta_lpo_warm_s\d+$"),
        "TA-LPO (scratch, lifetime strata)": re.compile(r"^ta_lpo_strata_s\d+$")}
ONE_SCAN = {"TA-LPO (scratch, lifetime strata)": "ta_lpo_s{seed}"}  # an arm that changes only how it computes: paired
# with the run of the same meta-seed made the usual way
RELATIVE_MARGIN = 0.05  # eval scores are raw returns: equivalent inside ±5 % of the baseline's IQM (metarl eval's default)


def arm_of(run: str) -> str | None:
    return next((arm for arm, pattern in ARMS.items() if pattern.match(run)), None)


def seed_of(run: str) -> int:
    return int(run.rsplit("_s", 1)[1])


def meta_training_seconds(run_dir: Path) -> float:
    """Seconds the run's generations took, over every invocation that made them (summary.json's own "seconds" is the
    last invocation's, near 0 for a run resumed only to be judged). Runs stepped together (a sweep vmaps the seeds of
    one arm) record their batch's time."""
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return float(sum(row.get("seconds_per_generation", 0.0) for row in rows))


def meta_train_rows(root: Path) -> list[dict]:
    from metarl import objectives
    from metarl.analysis.drift import describe_file, schedule_profile

    rows = []
    for summary_path in sorted(root.glob("*/summary.json")):
        run = summary_path.parent.name
        if arm_of(run) is None:
            continue
        summary = json.loads(summary_path.read_text())
        verdict = summary.get("verdict", {})
        row = {"run": run, "arm": arm_of(run), "seed": seed_of(run), "generations": summary["generations"],
               "seconds": meta_training_seconds(summary_path.parent), "stream": verdict.get("stream"),
               "lifetimes": verdict.get("lifetimes"),
               **describe_file(summary["learned_file"]), "schedule": schedule_profile(*objectives.load(summary["learned_file"])[:2])}
        for baseline, result in verdict.get("against", {}).items():
            row[baseline] = {"difference": result["difference"], "verdict": result["verdict"], "label": result["label"]}
        rows.append(row)
    return rows


def paired_verdicts(candidate: dict, baseline: dict, names: tuple[str, str]) -> list[tuple]:
    """Two meta-training verdicts (summary.json's "verdict") judged on the same seeds and lifetimes, paired: the
    candidate against the baseline per lifetime and over all of them, as (lifetime or "all", paired comparison) on
    normalized per-seed scores. ``names``: the two runs, for the error when they were judged on other seeds."""
    from metarl.app.verdict import paired_comparison, per_seed_score
    from metarl.meta.tasks import References

    if candidate["seed_keys"] != baseline["seed_keys"] or candidate["lifetimes"] != baseline["lifetimes"]:
        raise SystemExit(f"{names[0]} and {names[1]} were judged on other seeds or lifetimes: not paired")
    references = References(np.asarray(baseline["references"]["initial"]), np.asarray(baseline["references"]["ppo"]))
    ours, theirs = np.asarray(candidate["candidate_scores"]), np.asarray(baseline["candidate_scores"])
    pairs = []
    for li, n in [(None, "all")] + list(enumerate(baseline["lifetimes"])):
        pick = slice(None) if li is None else slice(li, li + 1)
        pairs.append((n, paired_comparison(per_seed_score(ours[:, pick], references, True),
                                           per_seed_score(theirs[:, pick], references, True), margin=baseline["equivalence_margin"])))
    return pairs


def versus_lpo_rows(root: Path) -> list[dict]:
    """Each TA-LPO run against the LPO of its meta-seed on the meta-training verdict's own test seeds (the same seeds,
    paired), per lifetime and averaged over them, from the raw scores both summary.json files store."""
    def verdict_of(run):
        path = root / run / "summary.json"
        return json.loads(path.read_text())["verdict"] if path.is_file() else None

    rows = []
    for summary_path in sorted(root.glob("ta_lpo*_s*/summary.json")):
        run = summary_path.parent.name
        if arm_of(run) is None:
            continue
        for other in [f"lpo_s{seed_of(run)}"] + ([ONE_SCAN[arm_of(run)].format(seed=seed_of(run))] if arm_of(run) in ONE_SCAN else []):
            candidate, baseline = verdict_of(run), verdict_of(other)
            if candidate is None or baseline is None:
                continue
            for n, result in paired_verdicts(candidate, baseline, (run, other)):
                rows.append({"run": run, "arm": arm_of(run), "against": other, "lifetime": n,
                             "stream": baseline["stream"], "difference": result["difference"], "verdict": result["verdict"]})
    return rows


EVALS = ("eval", "eval_minatar", "eval_long")  # the eval stages' run folders (classic control; MinAtar at its CPU-scale inner
# loop; lifetimes 4x longer than the range, where a study has them)
BASELINES = ("ppo", "tuned_ppo", "dpo")
TUNED_SUFFIX = "_tuned"  # <eval>_tuned: tuned PPO (beside PPO) measured later for an eval folder that left it out
SAME_SETTINGS = ("envs", "lifetimes", "num_seeds", "score", "heldout", "ppo", "batch_size")  # config fields that must agree


def with_tuned_companion(folder: Path, data: dict, config: dict, entries: list[str]) -> tuple[dict, list[str]]:
    """Append tuned PPO's scores from ``<folder>_tuned`` when ``folder`` has none. The pairing is valid only on the same
    judging seeds at the same settings: the two configs must agree on them, and the companion's PPO scores must equal
    this folder's bit for bit (they differ for any other seed or setting)."""
    companion = folder.parent / (folder.name + TUNED_SUFFIX)
    if "tuned_ppo" in entries or not (companion / "eval.npz").is_file():
        return data, entries
    from metarl.app.evaluation import load_eval

    other, other_config = load_eval(companion / "eval.npz"), json.loads((companion / "config.json").read_text())["config"]
    differ = [k for k in SAME_SETTINGS if config.get(k) != other_config.get(k)]
    labels = [str(label) for label in other["objectives"]]
    if differ or "ppo" not in labels or "tuned_ppo" not in labels or "ppo" not in entries:
        raise SystemExit(f"{companion} cannot pair with {folder}: " + (f"its {', '.join(differ)} differ" if differ else
                         "it needs PPO and tuned PPO, and the folder it completes needs PPO"))
    if not np.array_equal(other["scores"][labels.index("ppo")], data["scores"][entries.index("ppo")], equal_nan=True):
        raise SystemExit(f"{companion}: its PPO scores differ from {folder}'s, so its seeds or settings are not the same; "
                         "tuned PPO cannot be paired with that folder")
    scores = np.concatenate([data["scores"], other["scores"][labels.index("tuned_ppo")][None]])
    return {**data, "scores": scores}, entries + ["tuned_ppo"]


def eval_rows(root: Path) -> tuple[list[dict], dict]:
    """Every discovered objective against PPO, tuned PPO and DPO, and each TA-LPO against the LPO of its meta-seed,
    per env and lifetime, from every eval folder there is (each on the same judging seeds, paired); Holm over all."""
    from metarl.app.evaluation import load_eval
    from metarl.app.verdict import paired_comparison, with_holm
    from metarl.stats import iqm

    rows, envs, lifetimes, iqms, no_score, streams, seeds, unscored = [], [], [], {}, {}, set(), set(), set()
    for folder in [root / name for name in EVALS if (root / name / "eval.npz").is_file()]:
        data = load_eval(folder / "eval.npz")
        config = json.loads((folder / "config.json").read_text())["config"]
        labels = [str(label) for label in data["objectives"]]
        entries = list(config["objectives"]) + labels[len(config["objectives"]):]  # tuned_ppo comes after the given ones
        data, entries = with_tuned_companion(folder, data, config, entries)
        labels += entries[len(labels):]
        by_run = {Path(entry).parent.parent.name if entry.endswith(".msgpack") else label: i
                  for i, (label, entry) in enumerate(zip(labels, entries, strict=True))}
        folder_envs, folder_lifetimes = [str(e) for e in data["envs"]], [int(n) for n in data["lifetimes"]]
        envs += [e for e in folder_envs if e not in envs]
        lifetimes += [n for n in folder_lifetimes if n not in lifetimes]
        streams.add(config["heldout"])
        seeds.add(int(config["num_seeds"]))
        pairs = []
        for run in by_run:
            if arm_of(run) is None:
                continue
            pairs += [(run, baseline) for baseline in BASELINES if baseline in by_run]
            if arm_of(run) != "LPO" and f"lpo_s{seed_of(run)}" in by_run:
                pairs.append((run, f"lpo_s{seed_of(run)}"))
        for candidate, baseline in pairs:
            for e, env in enumerate(folder_envs):
                for li, n in enumerate(folder_lifetimes):
                    base, scores = data["scores"][by_run[baseline], e, li], data["scores"][by_run[candidate], e, li]
                    if "ppo" in by_run and not np.isfinite(data["scores"][by_run["ppo"], e, li]).any():
                        # PPO finished no episode on any seed (Acrobot at N = 2): the cell measures no learning
                        unscored.add((env, n))
                        continue
                    finite = base[np.isfinite(base)]  # a baseline with no score has no scale: nothing is "equivalent" to it
                    margin = RELATIVE_MARGIN * abs(float(iqm(finite))) if finite.size else 0.0
                    result = paired_comparison(scores, base, margin=margin)
                    rows.append({"candidate": candidate, "arm": arm_of(candidate), "against": "lpo (same meta-seed)"
                                 if baseline.startswith("lpo_s") else baseline, "env": env, "lifetime": n, "eval": folder.name,
                                 "stream": config["heldout"], "iqm": result["candidate"]["iqm"],
                                 "baseline_iqm": result["baseline"]["iqm"], "difference": result["difference"],
                                 "verdict": result["verdict"], "p_difference": result["p_difference"],
                                 "p_equivalence": result["p_equivalence"], "margin": margin})
        for run, i in by_run.items():  # IQM over the seeds with a score, and how many had none (diverged, or no episode)
            cells = {f"{env}/{n}": data["scores"][i, e, li] for e, env in enumerate(folder_envs) for li, n in enumerate(folder_lifetimes)}
            iqms.setdefault(run, {}).update({key: float(iqm(v[np.isfinite(v)])) if np.isfinite(v).any() else float("nan")
                                             for key, v in cells.items()})
            no_score.setdefault(run, {}).update({key: int((~np.isfinite(v)).sum()) for key, v in cells.items()
                                                 if 0 < (~np.isfinite(v)).sum() < v.size})
    if len(streams) > 1 or len(seeds) > 1:
        raise SystemExit(f"the evals were judged on other streams or seed counts ({sorted(streams)}, {sorted(seeds)}): not one study")
    return with_holm(rows), {"envs": envs, "lifetimes": sorted(lifetimes), "stream": streams.pop() if streams else "",
                             "num_seeds": seeds.pop() if seeds else 0, "iqm": iqms, "no_score": no_score,
                             "unscored": sorted(unscored)}


def counts(rows: list[dict], **where) -> str:
    chosen = [r for r in rows if all(r[k] == v for k, v in where.items())]
    words = [r["verdict"] for r in chosen]
    order = ("better", "equivalent", "inconclusive", "worse")
    return ", ".join(f"{words.count(w)} {w}" for w in order if words.count(w)) or "—"


def markdown(meta: list[dict], versus: list[dict], evals: list[dict], info: dict) -> str:
    lines = ["## Meta-training verdicts (each run's summary.json)", "",
             "| run | arm | temporal variation | vs PPO (same settings) | vs tuned PPO | meta-training s (its batch) |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in meta:
        cells = []
        for baseline in ("ppo", "tuned_ppo"):
            if baseline in r:
                d = r[baseline]["difference"]
                cells.append(f"{d['iqm']:+.3f} [{d['ci'][0]:+.3f}, {d['ci'][1]:+.3f}] {r[baseline]['verdict']}")
            else:
                cells.append("—")
        lines.append(f"| {r['run']} | {r['arm']} | {r['temporal_variation']:.3f} | {cells[0]} | {cells[1]} | {r['seconds']:.0f} |")
    if meta:
        lines.append(f"\nJudged on {meta[0]['stream']} seeds at the meta-training lifetimes N = {meta[0]['lifetimes']}, normalized "
                     "AUC (1 = PPO's reference gain), paired; temporal variation: mean |D(n/N = 1) − D(n/N = 0)| / mean |D| "
                     "over a fixed (r, A) grid (0 for a drift that ignores n/N). Meta-training seconds: the sum of the "
                     "run's seconds per generation; the sweep steps the meta-seeds of an arm together, so each is the time "
                     "of its whole batch, not of one run.")
    if meta:
        def ends(values):
            return f"{values[0]:.3f} → {values[-1]:.3f}"

        lines += ["", "## What each schedule does (metarl.analysis.drift.schedule_profile; n/N = 0 → 1)", "",
                  "| run | mean D where A > 0 | mean D where A < 0 | rollback share |", "| --- | --- | --- | --- |"]
        for r in meta:
            p = r["schedule"]
            lines.append(f"| {r['run']} | {ends(p['penalty_positive_advantage'])} | {ends(p['penalty_negative_advantage'])} "
                         f"| {ends(p['rollback_share'])} |")
        lines.append("\nMean D: how strictly the drift holds the ratio near 1 on each side (PPO's clip: 0.052 on both at every "
                     "n/N); rollback share: the grid points where the objective pushes r back towards 1 (PPO: 0). The paper "
                     "describes permissive early, strict late, and rollback.")
    for title, against_lpo in (("TA-LPO against the LPO of its meta-seed", True),
                               ("Lifetime strata against the one-scan run of the same meta-seed", False)):
        chosen = [r for r in versus if r["against"].startswith("lpo_s") == against_lpo]
        if not chosen:
            continue
        lifetimes = [r["lifetime"] for r in chosen if r["run"] == chosen[0]["run"]]
        lines += ["", f"## {title} (the same test seeds, paired; normalized AUC)", "",
                  "| run | against | " + " | ".join(f"N = {n}" for n in lifetimes) + " |", "| --- | --- |" + " --- |" * len(lifetimes)]
        for run in dict.fromkeys(r["run"] for r in chosen):
            cells = [f"{r['difference']['iqm']:+.3f} [{r['difference']['ci'][0]:+.3f}, {r['difference']['ci'][1]:+.3f}] {r['verdict']}"
                     for r in chosen if r["run"] == run]
            lines.append(f"| {run} | {next(r['against'] for r in chosen if r['run'] == run)} | " + " | ".join(cells) + " |")
        for arm in ARMS:
            words = [r["verdict"] for r in chosen if r["arm"] == arm and r["lifetime"] == "all"]
            if words:
                lines.append(f"\n{arm} vs {'LPO' if against_lpo else 'one scan'} over all lifetimes: " + ", ".join(
                    f"{words.count(w)} {w}" for w in ("better", "equivalent", "inconclusive", "worse") if words.count(w))
                    + f" (of {len(words)}).")
    if not evals:
        return "\n".join(lines)
    lines += ["", f"## Eval: every objective on the same {info['num_seeds']} {info['stream']} seeds (paired), AUC return", "",
              "Meta-seeds per arm with each verdict word (Holm-adjusted words in study.json):", "",
              "| env | N | arm | vs PPO | vs tuned PPO | vs DPO | vs the LPO of its meta-seed |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for env in info["envs"]:
        for n in info["lifetimes"]:
            if (env, n) in info["unscored"]:
                lines.append(f"| {env} | {n} | every arm | not measured: PPO finished no episode within the lifetime on any seed | | | |")
                continue
            for arm in ARMS:
                versus_lpo = "—" if arm == "LPO" else counts(evals, env=env, lifetime=n, arm=arm, against="lpo (same meta-seed)")
                if not any(r["env"] == env and r["lifetime"] == n and r["arm"] == arm for r in evals):
                    continue
                cells = " | ".join(counts(evals, env=env, lifetime=n, arm=arm, against=b) for b in BASELINES)
                lines.append(f"| {env} | {n} | {arm} | {cells} | {versus_lpo} |")
    lines += ["", "IQM per run (eval):", "", "| run | " + " | ".join(f"{e} N={n}" for e in info["envs"] for n in info["lifetimes"]) + " |",
              "| --- |" + " --- |" * (len(info["envs"]) * len(info["lifetimes"]))]
    for run, values in info["iqm"].items():
        missing = info.get("no_score", {}).get(run, {})

        def cell(key, values=values, missing=missing):
            if key not in values:
                return "—"
            return f"{values[key]:.1f}" + (f" ({missing[key]} of {info['num_seeds']} no score)" if key in missing else "")

        lines.append(f"| {run} | " + " | ".join(cell(f"{e}/{n}") for e in info["envs"] for n in info["lifetimes"]) + " |")
    if any(info.get("no_score", {}).values()):
        lines.append("\nIQM over the seeds with a score; a seed has none where its agent diverged (non-finite losses) or no "
                     "episode ended within the lifetime. The verdicts count such a seed at the lowest score of the pair.")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", default="results/ta_study")
    root = Path(parser.parse_args(argv).root)
    meta = meta_train_rows(root)
    evals, info = eval_rows(root)
    versus = versus_lpo_rows(root)
    text = markdown(meta, versus, evals, info)
    (root / "study.md").write_text(text + "\n")
    (root / "study.json").write_text(json.dumps({"meta_train": meta, "versus_lpo": versus, "eval": evals, "info": info}, indent=1) + "\n")
    print(text)
    print(f"wrote {root / 'study.md'}, study.json")


if __name__ == "__main__":
    main()
