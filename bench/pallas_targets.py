"""The Pallas kernel's rows of a ``simsam bench --gpu-suite --json`` run against the issue's GPU targets.

Reads the JSON rows (one object per line) that ``bench/gpu_suite.sh`` saved, and prints a markdown
section: for each ``path="pallas"`` row, its run-steps/s and microseconds per step beside the
naive-JAX peer's figure for the same configuration in the same run (taken from the auto path's row,
where the bench times the peers), and whether the targets hold: >= 5e9 run-steps/s at R >= 16384 in
float32, <= 2 us per step at R <= 64, each also against naive JAX. A figure the run did not measure
is "-", and a target without its figures is "not measured", never "met".

    python bench/pallas_targets.py reports/benchmarks_gpu.jsonl >> reports/benchmarks_gpu.md
"""
from __future__ import annotations

import json
import sys

MIN_RUN_STEPS_PER_S, AT_R_FROM = 5e9, 16384  # issue 15, part 3
MAX_US_PER_STEP, AT_R_TO = 2.0, 64


def _key(row):
    return row["method"], row["R"], row["d"], row["b"], row["dtype"]


def section(rows: list[dict]) -> str:
    measured = [r for r in rows if "skipped" not in r and "run_steps_per_s" in r]
    auto = {_key(r): r for r in measured if r.get("config_path") == "auto"}
    lines = ["", "## The Pallas kernel against the targets (bench/pallas_targets.py)", "",
             "| method | R | d | b | dtype | Pallas run-steps/s | Pallas us/step | naive JAX run-steps/s | "
             "Pallas / naive JAX | fused (auto) run-steps/s | target |",
             "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---|"]
    pallas = [r for r in measured if r.get("config_path") == "pallas"]
    for r in pallas:
        peer = auto.get(_key(r), {})
        naive = (peer.get("peer_run_steps_per_s") or {}).get("naive_jax")
        if r["R"] >= AT_R_FROM and r["dtype"] == "float32":
            ok = r["run_steps_per_s"] >= MIN_RUN_STEPS_PER_S
            target = f">= {MIN_RUN_STEPS_PER_S:.0e} run-steps/s: {'met' if ok else 'missed'}"
        elif r["R"] <= AT_R_TO:
            ok = r["us_per_step"] <= MAX_US_PER_STEP
            target = f"<= {MAX_US_PER_STEP} us/step: {'met' if ok else 'missed'}"
        else:
            target = "-"
        fmt = lambda v, spec=".3g": "-" if v is None else format(v, spec)  # noqa: E731
        lines.append(f"| {r['method']} | {r['R']} | {r['d']} | {r['b']} | {r['dtype']} | {fmt(r['run_steps_per_s'])} | "
                     f"{fmt(r['us_per_step'], '.2f')} | {fmt(naive)} | "
                     f"{fmt(None if naive is None else r['run_steps_per_s'] / naive)} | "
                     f"{fmt(peer.get('run_steps_per_s'))} | {target} |")
    if not pallas:
        lines.append("| - | - | - | - | - | not measured: no Pallas row in this run | | | | | not measured |")
    return "\n".join(lines) + "\n"


def main(path: str) -> None:
    with open(path) as f:
        rows = [json.loads(line) for line in f if line.startswith("{")]
    sys.stdout.write(section(rows))


if __name__ == "__main__":
    main(sys.argv[1])
