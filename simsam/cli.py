"""The ``simsam`` command line.

  simsam run NAME|all|paper [--out DIR] [--seeds N] [--steps T] [--set FIELD=VALUE ...] [--float32] [--quick]
                  [--quiet] [--force] [--chunk K] [--reference-step | --pallas-step]
                  [--process-id I --num-processes N] [--coordinator HOST:PORT | --coordinator auto]
  simsam merge NAME --num-processes N [same options as run]
  simsam run FILE.py [same options]   a study file anywhere
  simsam check NAME|FILE.py [same options as run] [--simulate]   from stored runs only; writes nothing
  simsam report DIR
  simsam list
  simsam bench [--quick | --gpu-suite] [--json] [--out FILE] [--budget SECONDS]

Bad input exits with status 2 and one line on stderr, never a traceback. ``run`` reuses the
runs stored in DIR/runs and resumes an interrupted one (``--force`` recomputes), saying which.
JAX, matplotlib and the experiments are imported only by the commands that need them, so that
``--help``, ``list`` and argument errors answer at once (bench/startup.py measures it).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from simsam.errors import SimsamError

DEFAULT_OUT = Path("simsam-out")  # not tracked by git; `--out reports` regenerates the shipped reports


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse's default prints usage too)
        self.exit(2, f"simsam: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="simsam", description="Theory-validation simulator for Sharpness-Aware Minimization.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    run = sub.add_parser(
        "run", help="run an experiment and write its figure and tables",
        description="Run the experiment NAME (a shipped study, see `simsam list`) or the study file FILE.py, and write figure.png, "
        "figure.pdf, summary.csv, the tidy tables verdicts.csv, curves.csv and references.csv (and "
        "Parquet copies with the pandas extra) and, for curves with a theorem or exact dynamics, "
        "compliance.csv into the output folder.",
    )
    _run_options(run)
    check = sub.add_parser(
        "check", help="print, per curve and reference, whether the bound held (from stored runs)",
        description="Read the stored runs of the experiment NAME (or FILE.py) from OUT/runs and print for "
        "each curve and reference: the assumptions and step-size conditions (which fails), fitted vs "
        "theoretical rate, tightness at the end, and the verdict. Writes nothing. A run that is not stored "
        "is named (exit status 1); --simulate computes it in memory instead.",
    )
    _run_options(check)
    check.add_argument("--simulate", action="store_true",
                       help="compute the runs that are not stored (in memory; nothing is written)")

    merge = sub.add_parser(
        "merge", help="assemble the shares of a sweep run by several processes, then write its report",
        description="Assemble, in OUT/runs, the shares that `simsam run NAME --process-id I --num-processes N` "
        "wrote there (run with the same options), into the result one process would have computed, "
        "bit for bit on CPU, and write the report from it.",
    )
    _run_options(merge, distributed=False)
    merge.add_argument("--num-processes", type=int, required=True, metavar="N", help="processes the sweep was split over")

    sub.add_parser("list", help="list experiments, problems, samplers, optimizers and references",
                   description="List what simsam offers, one name per line with a short description.")

    rep = sub.add_parser(
        "report", help="redraw the figures (and the index) of stored studies, without simulating",
        description="Redraw figure.png and figure.pdf of the study in DIR, or of every study in its "
        "subfolders (then DIR/index.md too), from their stored tables; nothing is simulated.",
    )
    rep.add_argument("dir", metavar="DIR", type=Path, help="a study folder written by `simsam run`, or a folder of them")

    bench = sub.add_parser(
        "bench", help="time the engine (run-steps per second) against the peers (NumPy loop, batched NumPy, naive JAX, numba)",
        description="Time simulate() for each method, R, d, b and dtype on the device JAX has, with a "
        "NumPy loop that advances one run at a time on the same problem, and write a markdown report.",
    )
    suite = bench.add_mutually_exclusive_group()
    suite.add_argument("--quick", action="store_true", help="a few configurations, under a minute on a CPU (no report unless --out)")
    suite.add_argument("--gpu-suite", action="store_true", help="the GPU suite: the targets first, then the grid (default --out reports/benchmarks_gpu.md)")
    bench.add_argument("--json", action="store_true", help="print one JSON object per configuration")
    bench.add_argument("--out", type=Path, default=None, help="markdown report (default: reports/benchmarks.md)")
    bench.add_argument("--budget", type=float, default=None, metavar="SECONDS",
                       help="start no configuration after this many seconds (the report keeps what was measured)")
    return p


def _run_options(p, distributed: bool = True) -> None:
    p.add_argument("name", metavar="NAME", help="experiment name (see `simsam list`), the path of a study file "
                   "(FILE.py, anywhere), or `all`: every experiment, "
                   "each into OUT/NAME, then OUT/paper.md and OUT/index.md; or `paper`: the paper_* "
                   "experiments, then OUT/paper.md and OUT/index.md")
    p.add_argument("--out", type=Path, default=None,
                   help=f"output folder (default: {DEFAULT_OUT}/NAME; for a group, {DEFAULT_OUT})")
    p.add_argument("--seeds", type=int, default=None, help="independent runs per curve (overrides the experiment's default)")
    p.add_argument("--steps", type=int, default=None, help="iterations per run, the horizon T (overrides the default)")
    p.add_argument("--float32", action="store_true", help="run the iterates in float32 (metrics stay float64)")
    p.add_argument("--set", dest="settings", action="append", default=[], metavar="FIELD=VALUE",
                   help="override a field of the experiment (seeds, steps, n_checkpoints, xscale, level, ...) or "
                        "a hyperparameter of every curve that has it (gamma, rho, lam, ...); repeatable")
    p.add_argument("--quick", action="store_true", help="few seeds and steps: a smoke test, not a result")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.add_argument("--force", action="store_true", help="recompute, ignoring stored results and saved chunks in DIR/runs")
    step = p.add_mutually_exclusive_group()
    step.add_argument("--reference-step", action="store_true",
                      help="run every curve with the optimizer's own step, not the engine's fused step "
                           "(simsam/engine/FUSED.md): the same samples, other rounding; stored apart")
    step.add_argument("--pallas-step", action="store_true",
                      help="run every curve with the Pallas kernel (simsam/engine/pallas.py; for GPUs, "
                           "interpret mode on CPU): the same samples, other rounding; stored apart; "
                           "refused where a curve is not SGD or Unified SAM on least squares with uniform b = 1")
    p.add_argument("--chunk", type=int, default=None, metavar="K",
                   help="checkpoints per compiled block; progress is saved after each (default: 64)")
    if not distributed:
        return
    d = p.add_argument_group("across processes and hosts (simsam/engine/distributed.py, README \"On a cluster\")")
    d.add_argument("--process-id", type=int, default=None, metavar="I",
                   help="this process's index in 0..N-1: it simulates the I-th of N consecutive ranges of the seeds")
    d.add_argument("--num-processes", type=int, default=None, metavar="N", help="processes the sweep is split over")
    d.add_argument("--coordinator", default=None, metavar="HOST:PORT",
                   help="jax.distributed's coordinator (process 0's host): the processes wait for each other and "
                        "process 0 writes the report; `auto` detects the cluster (SLURM, Open MPI) and takes I and "
                        "N from it. Without it each process writes its share and `simsam merge` assembles")


# Group names of `simsam run` / `check`: every experiment whose name starts with the prefix.
# A group holding paper_* experiments (the Unified SAM paper's section 4.1) also writes OUT/paper.md.
GROUPS = {"all": "", "paper": "paper_"}


def cmd_list(args) -> int:
    from simsam import catalog

    sections = {"experiments": catalog.experiments(), **catalog.load()}
    for title, items in sections.items():
        print(f"{title}:")
        for name, doc in items.items():
            print(f"  {name:<32} {doc}")
    return 0


def _check_args(args) -> None:
    """What can be checked before anything heavy is imported: counts, the name, the --set syntax."""
    from simsam import catalog
    from simsam.errors import check_int

    for flag, hi in (("seeds", None), ("steps", 2**31 - 2), ("--chunk", None)):
        if (value := getattr(args, flag.lstrip("-"))) is not None:
            check_int(flag, value, 1, hi)
    if args.name not in GROUPS and not catalog.is_path(args.name):
        catalog.check_name(args.name)
    for setting in args.settings:
        if "=" not in setting or not setting.partition("=")[0].strip():
            raise SimsamError(f"--set takes FIELD=VALUE, got {setting!r}")


def cmd_run(args, summary: bool = True) -> int:
    _check_args(args)
    from simsam import experiment
    from simsam.engine.distributed import share_from

    if getattr(args, "merge", None) is None:  # before anything touches a device
        args.share = share_from(args.process_id, args.num_processes, args.coordinator)

    if args.name not in GROUPS:
        return _run_one(args, args.name, args.out if args.out is not None else _default_out(args.name), summary)
    from simsam.index import write_index

    root = args.out if args.out is not None else DEFAULT_OUT
    names = [name for name in experiment.available() if name.startswith(GROUPS[args.name])]
    for name in names:
        print(f"== {name}", flush=True)
        _run_one(args, name, root / name, summary)
    if any(name.startswith(GROUPS["paper"]) for name in names):
        from simsam.paper_report import write_paper_report

        print(f"wrote {write_paper_report(root)}")
    print(f"wrote {write_index(root)}")
    return 0


def _run_one(args, name: str, out: Path, summary: bool) -> int:
    from simsam import experiment, report
    from simsam.engine.distributed import wait_for_all
    from simsam.errors import check_int

    chunk = None if args.chunk is None else check_int("--chunk", args.chunk, 1)
    opts = experiment.Options(seeds=args.seeds, steps=args.steps, quick=args.quick,
                              dtype="float32" if args.float32 else "float64")
    exp = experiment.override(experiment.load(name, opts), args.settings)
    for line in experiment.describe(exp, opts.dtype):
        print(line, flush=True)
    if args.quick:
        print(f"{exp.name}: --quick is a smoke test ({exp.seeds} seeds, {exp.steps} steps): its verdicts are not "
              "results", flush=True)
    t0 = time.perf_counter()
    log = lambda msg: print(f"  {msg}", flush=True)  # noqa: E731
    path = "reference" if args.reference_step else "pallas" if args.pallas_step else "auto"
    share, merge = getattr(args, "share", None), getattr(args, "merge", None)
    if share is not None:
        experiment.simulate_share(exp, out, share, dtype=opts.dtype, progress=not args.quiet, force=args.force, block=chunk,
                                  log=log, path=path)
        wait_for_all(share, f"shares of {exp.name}")
        if not share.coordinated or share.process_id != 0:
            then = ("process 0 writes the report" if share.coordinated else
                    f"`simsam merge {name} --num-processes {share.num_processes}` with the same options writes the report")
            print(f"{exp.name}: process {share.process_id} of {share.num_processes}: its share is in {out / 'runs'}; {then}")
            return 0
        merge = share.num_processes
    if merge is not None:
        experiment.assemble_shares(exp, out, check_int("--num-processes", merge, 1), dtype=opts.dtype, force=args.force,
                                   log=log, path=path)
    res = experiment.run_experiment(exp, out, dtype=opts.dtype, force=args.force and merge is None, block=chunk,
                                    progress=not args.quiet, log=log, path=path)
    print(f"{exp.name}: {len(exp.curves)} curves x {exp.seeds} seeds x {exp.steps} steps "
          f"in {time.perf_counter() - t0:.1f}s")
    if summary:
        for row in res["rows"]:
            key = next(k for k in row if k.startswith("final_"))
            print(f"  {row['curve']:<28} {key} = {row[key]:.4g}  [{row['ci_lo']:.4g}, {row['ci_hi']:.4g}]"
                  f"  diverged {row['n_diverged']}/{row['seeds']}")
    if res["checks"]:
        print("compliance (curve, reference, verdict):")
        report.print_table(res["checks"])
        needed = max((r.get("seeds_needed", 0) for r in res["checks"]), default=0)
        if needed > exp.seeds:
            print(f"{exp.name}: {exp.seeds} seeds are too few for some verdicts: rerun with --seeds {needed} "
                  f"(or --set seeds={needed})")
    elif not summary:
        print("no curve of this experiment names a theorem or exact dynamics")
    for f in res["files"]:
        print(f"  wrote {f}")
    return 0


def cmd_report(args) -> int:
    from simsam import tables
    from simsam.results import study_folders

    folders = study_folders(args.dir)
    for folder in folders:
        for path in tables.redraw(folder):
            print(f"wrote {path}")
    if len(folders) > 1 or folders[0] != Path(args.dir):
        from simsam.index import write_index

        print(f"wrote {write_index(args.dir)}")
    return 0


def _default_out(name: str) -> Path:
    """DEFAULT_OUT/NAME, or DEFAULT_OUT/STEM for a study file."""
    from simsam import catalog

    return DEFAULT_OUT / (Path(name).stem if catalog.is_path(name) else name)


def cmd_check(args) -> int:
    """The compliance table from the runs stored in OUT/runs: names what is missing (status 1) unless
    --simulate computes it (in memory). Writes nothing."""
    _check_args(args)
    from simsam import experiment, report

    if args.name in GROUPS:
        root = args.out if args.out is not None else DEFAULT_OUT
        names = [n for n in experiment.available() if n.startswith(GROUPS[args.name])]
        return max((_check_one(args, n, root / n) for n in names), default=0)
    return _check_one(args, args.name, args.out if args.out is not None else _default_out(args.name))


def _check_one(args, name: str, out: Path) -> int:
    from simsam import experiment, report

    opts = experiment.Options(seeds=args.seeds, steps=args.steps, quick=args.quick,
                              dtype="float32" if args.float32 else "float64")
    exp = experiment.override(experiment.load(name, opts), args.settings)
    path = "reference" if args.reference_step else "pallas" if args.pallas_step else "auto"
    results, missing = experiment.stored_curves(exp, out / "runs", dtype=opts.dtype, path=path)
    if missing and not args.simulate:
        print(f"{exp.name}: {len(missing)} run(s) not stored in {out / 'runs'} (run `simsam run {name}"
              f"{' --out ' + str(out) if args.out is not None else ''}` with the same options, or check --simulate):")
        for labels, where in missing:
            print(f"  missing: {', '.join(labels)} ({where})")
        return 1
    if missing:
        results = experiment.simulate_curves(exp, opts.dtype, progress=not args.quiet, path=path, given=results,
                                             log=lambda msg: print(f"  {msg}", flush=True))
    checked = report.checks(results, exp.normalize)
    if not checked:
        print(f"{exp.name}: no curve of this experiment has a reference (a theorem, exact dynamics, a bound)")
        return 0
    print(f"{exp.name}: compliance (curve, reference, verdict):")
    report.print_table([c.row for c in checked])
    return 0


def cmd_merge(args) -> int:
    args.merge = args.num_processes
    return cmd_run(args)


def cmd_bench(args) -> int:
    from simsam import bench
    from simsam.errors import check_positive

    name = "quick" if args.quick else "gpu" if args.gpu_suite else "full"
    default_out = {"quick": None, "full": Path("reports/benchmarks.md"), "gpu": Path("reports/benchmarks_gpu.md")}[name]
    budget = None if args.budget is None else float(check_positive("--budget", args.budget))
    bench.run(bench.suite(name), as_json=args.json, out=args.out or default_out, budget_s=budget)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return {"run": cmd_run, "check": cmd_check, "merge": cmd_merge, "list": cmd_list, "report": cmd_report,
                "bench": cmd_bench}[args.command](args)
    except SimsamError as e:
        print(f"simsam: error: {' '.join(str(e).split())}", file=sys.stderr)  # one line, whatever the message
        return 2
    except BrokenPipeError:  # `simsam list | head`: the reader left; nothing to report
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        from simsam import _signals

        return _signals.interrupted()  # 130, or 143 for SIGTERM (simsam/_signals.py)
    except MemoryError:
        print("simsam: error: out of memory: use fewer --seeds, fewer grid points or a smaller --chunk",
              file=sys.stderr)
        return 2


if __name__ == "__main__":
    from simsam.__main__ import run

    sys.exit(run())
