"""Q2.3's summary and table, from the per-seed results of q2_3_multi_protein.py and its profile-only
baseline."""
import numpy as np

from common.reporting.stats import paired_diff
from common.rna.multi import protein_label
from common.runfiles.files import source_name

COMPARISONS = (("few-shot (own profile) − profile-only baseline", "fewshot", "profile_only", "fewshot"),
               ("few-shot (own profile) − other proteins' mean", "fewshot", "others_mean", "fewshot"),
               ("few-shot (own profile) − single-protein model", "fewshot", "single", "fewshot"),
               ("multi-protein (seen) − single-protein model", "multi_seen", "single", None),
               # the learned control: does the profile add anything beyond the proteins' shared binding?
               ("few-shot (own profile) − no-profile control", "fewshot", "noprofile", "noprofile"),
               ("no-profile control − other proteins' mean", "noprofile", "others_mean", "noprofile"),
               # sensitivity: the few-shot arm without its runs that had not converged at the epoch cap
               ("few-shot, converged runs only − profile-only baseline", "fewshot_converged", "profile_only",
                "fewshot_converged"),
               ("few-shot, converged runs only − other proteins' mean", "fewshot_converged", "others_mean",
                "fewshot_converged"))


def summarise(names, ids, per_seed, baseline, record, protocol):
    """summary.json. per_seed: one dict per seed of q2_3's protocol(); protocol: the encoder, its hp, lr,
    batch size and source, the epochs, patience, seeds and device (stored as they are)."""
    seeds = protocol["seeds"]
    rows = []
    for name, pid in zip(names, ids):
        row = {"protein": name, "id": pid, "label": protein_label(name, record),
               "profile_only": baseline["proteins"][name]["test"]["spearman"],
               "others_mean": baseline["proteins"][name]["test_others_mean"]["spearman"]}
        for key in ("single", "multi_seen", "fewshot", "noprofile"):
            vals = [r[key][name] for r in per_seed if name in r.get(key, {})]
            row[key] = float(np.mean(vals)) if vals else None
            row[key + "_std"] = float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0
            row[key + "_values"] = vals
        converged = [r["fewshot"][name] for seed, r in zip(seeds, per_seed)
                     if name in r["fewshot"] and f"seed{seed}/fewshot/{name}" not in r["not_converged"]]
        row["fewshot_converged"] = float(np.mean(converged)) if converged else None
        row["fewshot_converged_n"] = len(converged)
        rows.append(row)
    comparisons = {}
    not_converged = [x for r in per_seed for x in r["not_converged"]]
    for label, a, b, needs in COMPARISONS:
        if a == "fewshot_converged" and not not_converged:
            continue   # the sensitivity rows would repeat the arm's own rows
        rs = [r for r in rows if needs is None or r[needs] is not None]
        if len(rs) >= 2:
            comparisons[label] = {**paired_diff([r[a] for r in rs], [r[b] for r in rs]), "a": a, "b": b,
                                  "mean_a": float(np.mean([r[a] for r in rs])),
                                  "mean_b": float(np.mean([r[b] for r in rs])),
                                  "proteins": [r["protein"] for r in rs],
                                  "unit": f"protein (each the mean over seeds {seeds}; "
                                          "the baseline has no seed)"}
    means = {k: float(np.mean([r[k] for r in rows if r[k] is not None]))
             if any(r[k] is not None for r in rows) else None
             for k in ("single", "multi_seen", "fewshot", "noprofile", "profile_only", "others_mean")}
    return {"experiment": baseline["experiment"], "data": record, **protocol, "rows": rows,
            "comparisons": comparisons, "not_converged": not_converged,
            # stricter: ran to the epoch cap without early stopping
            # (its best epoch may still be before the last)
            "ran_to_cap": [f"seed{s}/{arm}" for s, r in zip(seeds, per_seed) for arm, e in r["epochs"].items()
                           if not e["stopped_early"]],
            "best_and_run_epochs": {f"seed{s}": r["epochs"] for s, r in zip(seeds, per_seed)},
            # records trained under another cap and kept (--resume): valid here only if they stopped early
            # within both caps (common.runfiles.records.stands_for_cap, enforced by the script;
            # bench/q2_3_cap_queue.sh)
            "kept_from_other_cap": {f"seed{s}/{arm}": e["cap"] for s, r in zip(seeds, per_seed)
                                    for arm, e in r["epochs"].items()
                                    if e.get("cap", protocol["epochs"]) != protocol["epochs"]},
            "mean": means}


def table(summary, record):
    """table.md: per protein, every arm and both baselines, then the paired comparisons, with a caption that
    says the data, the encoder, the stopping rule and which runs did not converge."""
    def fmt(r, k):
        return ("—" if r[k] is None else
                f"{r[k]:.4f}" + (f" ± {r[k + '_std']:.4f}" if len(summary["seeds"]) > 1 else ""))
    m = summary["mean"]
    control = m.get("noprofile") is not None   # the learned no-profile control, where it was run
    keys = ("single", "multi_seen", "fewshot", *("noprofile",) * control, "profile_only", "others_mean")
    lines = ["| protein | id | single-protein model | multi-protein, seen (identity) | few-shot: new protein,"
             " own profile | " + "no-profile control (learned, zero profile) | " * control
             + "profile-only baseline (no weights) | other proteins' mean (no weights) |",
             "|---|---|" + "---|" * len(keys)]
    cell = lambda r, k: f"{r[k]:.4f}" if k in ("profile_only", "others_mean") else fmt(r, k)   # no seed
    lines += [f"| {r['label']} | {r['id']} | " + " | ".join(cell(r, k) for k in keys) + " |"
              for r in summary["rows"]]
    lines.append("| **mean** | | " + " | ".join("—" if m[k] is None else f"{m[k]:.4f}" for k in keys) + " |")
    comp = [f"- {k}: {c['diff']:+.4f}"
            + ("" if c["ci95"] is None else f", 95% CI [{c['ci95'][0]:+.4f}, {c['ci95'][1]:+.4f}]")
            + f" ({c['method']}, n = {c['n']} proteins)" for k, c in summary["comparisons"].items()]
    conv, s = summary["not_converged"], summary
    simulated = "; sim-* proteins have invented motifs" if record["source"] == "simulated" else ""
    caption = (f"Test Spearman on SetB, mean ± std over seeds {s['seeds']}. "
               f"Data: {source_name(record)} ({record['checksum'][:8]}){simulated}. "
               f"Encoder {s['encoder']} ({s['encoder_source']}: {s['encoder_hp']}, lr {s['lr']:.3g}, "
               f"batch {s['batch_size']}); at most {s['epochs']} epochs, "
               f"early stopping patience {s['patience']}; "
               + ("every run converged (best epoch before its last, or stopped early); " if not conv else
                  f"NOT converged: {', '.join(conv)}; ")
               + (f"ran to the {s['epochs']}-epoch cap without stopping early: "
                  f"{', '.join(s['ran_to_cap'])}; " if s["ran_to_cap"] else "")
               + (f"{len(s['kept_from_other_cap'])} records kept from a run with another epoch cap "
                  f"(each stopped early within both caps); " if s.get("kept_from_other_cap") else "")
               + f"device {s['device']}.\n\n")
    return caption + "\n".join(lines) + "\n\n" + "\n".join(comp) + "\n"
