"""`sparse-vae`: the command line the Snakemake rules call, one subcommand per pipeline stage.

Heavy modules (torch, matplotlib, scikit-learn) are imported inside each subcommand so that a
job only pays for what it uses. Errors a user can act on print one line and exit with status 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from sparse_vae.data import DOWNLOADABLE, SOURCES
from sparse_vae.errors import SparseVAEError


def _json_arg(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"not valid JSON: {error}") from None


def _cmd_validate(args: argparse.Namespace) -> None:
    from sparse_vae.config import load_config

    load_config(*args.configs)
    print(f"config.yaml + {' + '.join(args.configs)}: valid" if args.configs else "config.yaml: valid")


def _cmd_download(args: argparse.Namespace) -> None:
    from sparse_vae.data import download

    download(args.source, Path(args.root))
    if args.done:
        Path(args.done).parent.mkdir(parents=True, exist_ok=True)
        Path(args.done).write_text(f"{args.source} raw files present in {args.root}\n")


def _cmd_prepare(args: argparse.Namespace) -> None:
    from sparse_vae.data import prepare

    prepare(args.source, args.params, Path(args.root), Path(args.out))


def _cmd_train(args: argparse.Namespace) -> None:
    from sparse_vae.train import train_pack

    specs = args.spec if isinstance(args.spec, list) else [args.spec]
    if len(specs) != len(args.run_dir):
        raise SparseVAEError(f"--spec holds {len(specs)} run specs but --run-dir names {len(args.run_dir)} folders")
    train_pack(Path(args.data), specs, [Path(d) for d in args.run_dir], threads=args.threads, device=args.device)


def _cmd_analyze(args: argparse.Namespace) -> None:
    from sparse_vae.analysis.run_io import analyze_pack

    figures_for = [] if args.no_figures else args.figures_for
    analyze_pack(Path(args.data), [Path(d) for d in args.run_dir], args.params, threads=args.threads,
                 figures_for=None if figures_for is None else [Path(d) for d in figures_for])


def _cmd_baseline(args: argparse.Namespace) -> None:
    from sparse_vae.baseline import run_baseline

    run_baseline(Path(args.data), args.params, Path(args.out_dir), threads=args.threads)


def _cmd_estimator_controls(args: argparse.Namespace) -> None:
    from sparse_vae.analysis.estimator_controls import write_controls

    write_controls(args.params, Path(args.out), Path(args.retina_out) if args.retina_out else None, threads=args.threads)


def _cmd_report(args: argparse.Namespace) -> None:
    from sparse_vae.report import build_report

    build_report([Path(p) for p in args.metrics], args.study, Path(args.out_dir),
                 [Path(p) for p in args.baselines], args.estimator_controls, args.retina_control)


def _cmd_readme(args: argparse.Namespace) -> None:
    from sparse_vae.report.readme import results_markdown, update_readme

    block = results_markdown(Path(args.report_dir))
    if args.check:
        current = Path(args.readme).read_text()
        if block not in current:
            raise SparseVAEError(f"{args.readme}: results section differs from {args.report_dir}; "
                                 "run `sparse-vae readme` without --check to regenerate it")
        print(f"{args.readme}: results section matches {args.report_dir}")
        return
    changed = update_readme(Path(args.readme), block, args.study)
    print(f"{args.readme}: results section {'rewritten' if changed else 'already up to date'}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sparse-vae",
        description="Sparse VAE study: prepare data, train, analyze and report (the steps the Snakefile runs).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _add_data_commands(sub)
    _add_run_commands(sub)
    _add_study_commands(sub)
    return parser


def _add_data_commands(sub: Any) -> None:
    """validate, download, prepare: the config and the datasets."""
    p = sub.add_parser(
        "validate",
        help="check config files as Snakemake sees them: each merged over config.yaml, in order",
    )
    p.add_argument("configs", nargs="*", metavar="FILE",
                   help="YAML files passed with --configfile (a preset, a GPU snippet); none: config.yaml alone")
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("download", help="fetch raw MNIST, Fashion-MNIST or CIFAR-10 files with torchvision "
                       "(needs network unless present; Fashion-MNIST also from its Debian package)")
    p.add_argument("--source", required=True, choices=DOWNLOADABLE)
    p.add_argument("--root", required=True, help="data root torchvision downloads into / reads from")
    p.add_argument("--done", help="marker file written once the raw files are verified")
    p.set_defaults(func=_cmd_download)

    p = sub.add_parser("prepare", help="build results/data/<dataset>.npz from a source")
    p.add_argument("--source", required=True, choices=SOURCES)
    p.add_argument("--params", required=True, type=_json_arg, help="the dataset's `prepare` settings as JSON")
    p.add_argument("--root", default="data", help="data root holding raw MNIST / CIFAR files")
    p.add_argument("--out", required=True, help="output .npz path")
    p.set_defaults(func=_cmd_prepare)


def _add_run_commands(sub: Any) -> None:
    """train, analyze, baseline: one run (or one dataset's sparse-coding baseline)."""
    p = sub.add_parser("train", help="train one VAE, or a pack of seeds as one batched model (resumes from a "
                       "checkpoint in the first --run-dir)")
    p.add_argument("--data", required=True, help="prepared dataset .npz")
    p.add_argument("--spec", required=True, type=_json_arg,
                   help="run spec JSON: dataset, prior{name,family,posterior,scale,kl,kl_samples,objective,"
                        "objective_samples}, latent, seed, model, train{epochs,batch_size,lr (number or grid),"
                        "checkpoint_every,patience,min_delta,val_iwae_samples}; or a list of specs that "
                        "differ only in seed (a pack)")
    p.add_argument("--run-dir", required=True, nargs="+",
                   help="folder for model.pt, history.csv, train.json: one per spec, in order")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (set from the rule's threads)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="auto = CUDA when present")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("analyze", help="latent-space metrics and figures of trained runs (one process)")
    p.add_argument("--data", required=True, help="prepared dataset .npz")
    p.add_argument("--run-dir", required=True, nargs="+", help="run folders holding model.pt")
    p.add_argument("--params", required=True, type=_json_arg, help="the `analysis` settings as JSON")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--no-figures", action="store_true",
                   help="leave every run's figures/ empty (seeds the report does not show; analysis.figures)")
    p.add_argument("--figures-for", nargs="+", metavar="RUN_DIR",
                   help="draw figures only for these of the --run-dir folders (the others' figures/ stay empty)")
    p.set_defaults(func=_cmd_analyze)

    p = sub.add_parser("baseline", help="sparse-coding dictionary (L1) on a dataset's train patches, with field fits")
    p.add_argument("--data", required=True, help="prepared dataset .npz")
    p.add_argument("--params", required=True, type=_json_arg,
                   help="the dataset's `dictionary` settings as JSON: n_atoms, alpha, batch_size, max_iter, seed")
    p.add_argument("--out-dir", required=True, help="folder for atoms.npz, metrics.json, atoms.png")
    p.add_argument("--threads", type=int, default=1, help="BLAS threads")
    p.set_defaults(func=_cmd_baseline)

    p = sub.add_parser("estimator-controls", help="known-answer controls of the metric estimators (JSON for the report)")
    p.add_argument("--out", required=True, help="the estimators' JSON file (a list of rows) to write")
    p.add_argument("--retina-out", help="the centre-surround classifier's control JSON to write (optional)")
    p.add_argument("--params", required=True, type=_json_arg,
                   help="JSON: info_draws, probe_folds, info_examples (the analysis slice); optional n_small, repeats, "
                        "seed, retina_sizes")
    p.add_argument("--threads", type=int, default=1)
    p.set_defaults(func=_cmd_estimator_controls)


def _add_study_commands(sub: Any) -> None:
    """report, readme: the whole study."""
    p = sub.add_parser("report", help="aggregate runs into tables, figure panels and report.html")
    p.add_argument("--study", required=True, type=_json_arg, help="study and report settings as JSON")
    p.add_argument("--out-dir", required=True, help="report folder")
    p.add_argument("--baselines", nargs="*", default=[], metavar="FILE",
                   help="baselines/<dataset>/dictionary/metrics.json of the study's sparse-coding baselines")
    p.add_argument("--estimator-controls", type=Path, metavar="FILE",
                   help="controls/estimators.json: the estimators' known-answer controls (gates the verdicts "
                        "that read them; without it they are not gated)")
    p.add_argument("--retina-control", type=Path, metavar="FILE",
                   help="controls/retina.json: the centre-surround classifier's control (without it that control "
                        "reads 'not tested')")
    p.add_argument("metrics", nargs="+", help="metrics.json of every run in the study")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("readme", help="write a finished study's verdicts and numbers into the README's results section")
    p.add_argument("--report-dir", default="results/offline/report", help="the study's report folder")
    p.add_argument("--readme", default="README.md", help="file with the results markers")
    p.add_argument("--study", default="offline", help="name in the README's results markers of this study")
    p.add_argument("--check", action="store_true", help="only check that the README matches; exit 1 if not")
    p.set_defaults(func=_cmd_readme)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except SparseVAEError as error:
        print(f"sparse-vae {args.command}: error: {error}", file=sys.stderr)
        return 1
    return 0
