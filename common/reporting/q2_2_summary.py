"""Q2.2's summary.json, from every finished record of an experiment folder (all arms, all seeds)."""
import numpy as np

from common.reporting.q2_2_design import first_epoch_at
from common.rna.attention import finds_site
from common.runfiles.files import read_json, write_json
from common.runfiles.provenance import code_version
from common.runfiles.records import load_runs


def summarise(out, thresholds, record):
    """summary.json of an experiment folder, from every finished record in it (all variants, all seeds)."""
    summary = {"experiment": out.name, "data": record, "thresholds": thresholds, "variants": {},
               "code": code_version()}
    for d in sorted(p for p in out.iterdir() if p.is_dir()):
        recs = [r for r in load_runs(d) if r.get("status") == "complete"]
        if not recs:
            continue
        test = [r["test"]["spearman"] for r in recs]
        summary["variants"][d.name] = {
            "variant": recs[0]["variant"], "hp": recs[0]["config"]["hp"], "seeds": [r["seed"] for r in recs],
            "epochs_to_fixed_thresholds": {str(t): [first_epoch_at(r["history"], t) for r in recs]
                                           for t in thresholds},
            "test_spearman": test, "test_spearman_mean": float(np.mean(test)),
            "test_spearman_std": float(np.std(test, ddof=1)) if len(test) > 1 else 0.0,
            "best_val_spearman_mean": float(np.mean([r["best"]["val_spearman"] for r in recs])),
            "attention": [{"seed": r["seed"], "finds_site": finds_site(r["attention"]),
                           **{k: v for k, v in r["attention"].items() if k != "map_probes"}}
                          for r in recs if "attention" in r]}
    legacy = read_json(out / "summary.json").get("attention") if (out / "summary.json").is_file() else None
    if (isinstance(legacy, dict)
            or (out / "summary.json").is_file() and "attention_legacy" in read_json(out / "summary.json")):
        # the tuned setting's earlier statistic (seed 0, from weights no longer kept):
        # carried over, never recomputed
        summary["attention_legacy"] = (legacy if isinstance(legacy, dict)
                                       else read_json(out / "summary.json")["attention_legacy"])
    write_json(out / "summary.json", summary)
    return summary
