"""The flags every script shares, their argument types, and the run options they give (apart from the
protocol)."""
import argparse
from dataclasses import asdict, dataclass, field


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """--help with each flag's default written once: "(default: X)" is added only where the help text does not
    already give it as "(default ...)"."""

    def _get_help_string(self, action):
        text = action.help or ""
        return text if "(default" in text else super()._get_help_string(action)


def positive_int(text):
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def positive_float(text):
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def add_common_args(p, *, epochs, batch_size, lr, quick_epochs, checkpoints=True, checkpoint_every=False,
                    channels_last=False, seed_list=None):
    """The shared flags, in groups; a script is offered only the flags it honours. Defaults are the homework
    protocol.

    epochs: the protocol's epochs (None: per model, said in the script's help); quick_epochs: with --quick
    (both are resolved by parse_flags). checkpoints: the script keeps per-epoch checkpoints (--run-dir,
    --resume); checkpoint_every: it honours --checkpoint-every; channels_last: it has 2D convs
    (--channels-last)."""
    p.protocol_epochs, p.quick_epochs = epochs, quick_epochs
    g = p.add_argument_group("protocol")
    g.add_argument("--epochs", type=positive_int, default=None,
                   help=f"training epochs (default {epochs or 'per model, see above'}, "
                        f"the homework protocol; {quick_epochs} with --quick)")
    g.add_argument("--batch-size", type=positive_int, default=batch_size,
                   help=f"minibatch size (default {batch_size or 'from the configuration, see above'})")
    g.add_argument("--lr", type=positive_float, default=lr,
                   help=f"Adam learning rate (default {lr or 'from the configuration, see above'})")
    g.add_argument("--seed", type=int, default=None if seed_list else 0,
                   help="seed for random, numpy, torch and batch order (default "
                        + (f"{seed_list}: a run per seed" if seed_list else "0") + ")")
    g.add_argument("--seeds", type=int, nargs="+", default=None,
                   help="several seeds: one run per seed under <variant>/seed<k>/, plus "
                        "<variant>/aggregate.json (mean ± std)")
    d = p.add_argument_group("device")
    d.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="auto",
                   help="training device; auto picks cuda, then mps, then cpu")
    d.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto",
                   help="autocast precision; auto = bf16 on CPUs with native bf16 (AVX512-BF16/AMX) for the "
                        "models where it measured faster (Q1 CNNs, BiLSTM), else fp32 (the Q2 CNN, and CUDA: "
                        "measured faster there)")
    if channels_last:
        d.add_argument("--channels-last", choices=["auto", "on", "off"], default="auto",
                       help="channels_last memory format for 2D convs; auto = on")
    d.add_argument("--threads", type=positive_int, default=None,
                   help="torch CPU threads (default: torch's choice)")
    d.add_argument("--malloc", choices=["auto", "keep", "default"], default="auto",
                   help="glibc malloc: keep = reuse freed memory instead of returning blocks over 32 MB to "
                        "the OS (Q1.1 on CPU: 24.6 -> 14.9 s/epoch in the benchmark, README); "
                        "auto = keep on Linux with glibc")
    r = p.add_argument_group("run files")
    r.add_argument("--out-dir", default="figures",
                   help="where metrics.json files and figures go (default figures/)")
    if checkpoints:
        r.add_argument("--run-dir", default="runs",
                       help="where per-epoch checkpoints go, for --resume (default runs/)")
    if checkpoint_every:
        r.add_argument("--checkpoint-every", type=positive_int, default=1,
                       help="write the --resume checkpoint every N epochs "
                            "(the Q1.1 one is ~400 MB with Adam state)")
    r.add_argument("--note", default="",
                   help="free text stored in metrics.json (e.g. that the run shared its GPU)")
    r.add_argument("--quick", action="store_true",
                   help=f"smoke run: {quick_epochs} epoch(s) on a small subset; "
                        f"outputs go to <experiment>_quick")
    if checkpoints:
        r.add_argument("--resume", action="store_true", help="continue interrupted runs from their last "
                       "completed epoch; finished runs are kept")
    r.add_argument("--force", action="store_true", help="replace finished runs (refused otherwise)")
    return p


@dataclass(frozen=True)
class RunOptions:
    """How a run is carried out, apart from its protocol: where its files go, whether it resumes or replaces,
    the device flags, the note. A record stores these as "options", its protocol values as "config" and the
    command line under "code" (common/runfiles/provenance.py). Flags a script does not offer keep their
    default here."""
    out_dir: str = "figures"
    run_dir: str | None = None
    note: str = ""
    quick: bool = False
    resume: bool = False
    force: bool = False
    checkpoint_every: int | None = None
    device: str = "auto"
    precision: str = "auto"
    channels_last: str | None = None
    threads: int | None = None
    malloc: str = "auto"
    extra: dict = field(default_factory=dict)   # a script's own run flags (e.g. --stop-at, --workers)

    def record(self, **more):
        """The options as a record stores them: the fields, the script's own run flags, and `more`."""
        out = {k: v for k, v in asdict(self).items() if k != "extra"}
        return {**out, **self.extra, **more}


def parse_flags(p, argv=None, options=()):
    """(Namespace, RunOptions): parse_args, then the epochs (--epochs if given, else the quick-mode epochs
    with --quick, else the protocol's: None where each model has its own), then the run options. options: the
    script's own flags (dest names) that are run options rather than protocol values; they go to
    RunOptions.extra."""
    ns = p.parse_args(argv)
    if ns.epochs is None:
        ns.epochs = p.quick_epochs if ns.quick else p.protocol_epochs
    given = vars(ns)
    known = {f for f in RunOptions.__dataclass_fields__ if f != "extra"}
    opts = RunOptions(**{k: given[k] for k in known if k in given}, extra={k: given[k] for k in options})
    return ns, opts


def seeds_of(seed, seeds):
    """The list of seeds to run: --seeds if given, else [--seed]."""
    return list(seeds) if seeds else [seed]


def refuse_flags(p, argv, dests, why):
    """p.error (one line, exit 2) when the command line gives any of the flags `dests` (argparse dest names)
    that this mode would ignore; why: what the mode uses instead. Abbreviated and --flag=value forms count:
    argparse leaves a namespace's value in place where its flag is absent."""
    unset = object()
    ns = p.parse_args(argv, namespace=argparse.Namespace(**dict.fromkeys(dests, unset)))
    given = ["--" + d.replace("_", "-") for d in dests if getattr(ns, d) is not unset]
    if given:
        p.error(f"{' and '.join(given)} would be ignored: {why}; drop {'them' if len(given) > 1 else 'it'}")
