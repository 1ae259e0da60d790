"""The attention fields of a Q2.2 record: where an attention-pooling model looks (common/rna/attention.py's
statistics on its selected weights), and their recomputation for a record made under an older definition."""
import torch

from common.rna.attention import (
    STATISTIC_VERSION,
    attention_weights,
    map_probes,
    per_head_mass,
    site_statistics,
)
from common.rna.fit import predict
from common.rna.format import decode
from common.rna.models import build_rna_model
from common.runfiles.files import load_torch, timestamp, write_json
from common.runfiles.provenance import code_version


def where_attention_looks(model, split, seqs):
    """The site statistics by position and the map probes of one attention-pooling model (its selected
    weights)."""
    heads = attention_weights(model, split)                    # (N, heads, L)
    weights = heads.mean(1)
    with torch.inference_mode():
        pred = predict(model, split).cpu().numpy()
    return {**site_statistics(weights, seqs), "per_head_mass_on_motif": per_head_mass(heads, seqs),
            "map_probes": map_probes(weights, seqs, pred)}


def recompute_attention(rec, files, variant, hp, data, device):
    """A finished record with an older definition of where attention looks: recompute it from the selected
    weights in its checkpoint, leaving every other field as it was (without the checkpoint the record stays as
    it is)."""
    if not files.checkpoint.is_file():
        print(f"{files.metrics.parent}: attention statistic version "
              f"{rec.get('attention', {}).get('statistic_version')} kept (no checkpoint at "
              f"{files.checkpoint} to recompute version {STATISTIC_VERSION} from)")
        return rec
    ck = load_torch(files.checkpoint, "rerun this seed with --force to remake it", weights_only=False)
    model = build_rna_model(variant, **hp).to(device)
    model.load_state_dict(ck["best_state"])
    model.eval()
    rec["attention"] = where_attention_looks(model, data["test"],
                                             decode(data["test"]["x"], data["test"]["valid"]))
    rec["attention_recomputed"] = {"written": timestamp(), "code": code_version(),
                                   "from": f"the selected weights in {files.checkpoint}"}
    write_json(files.metrics, rec)
    print(f"{files.metrics.parent}: attention statistics recomputed (version {STATISTIC_VERSION})")
    return rec
