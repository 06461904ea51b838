#!/usr/bin/env bash
# The GPU measurements owed by the benchmark work (bench/NOTES.md, "Owed on a GPU"), in one call of
# under 8 minutes on one H100 or H200, setup included:
#
#   bash bench/gpu_suite.sh
#
# writes reports/benchmarks_gpu.md (the report, machine named, with the Pallas kernel's section)
# and reports/benchmarks_gpu.jsonl (one JSON object per configuration). Needs jax with CUDA: either
# installed (pip install -e '.[cuda12]' where the machine can download) or, on a machine that
# cannot, the image's own jax: nothing is installed then and simsam is taken from this checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
python -c "import simsam" 2>/dev/null || export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

python - <<'PY'
import jax, sys
if jax.default_backend() != "gpu":
    sys.exit(f"bench/gpu_suite.sh: JAX sees no GPU ({jax.devices()}); install jax[cuda12]")
print("devices:", jax.devices(), "jax", jax.__version__)
PY
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true

# 1. The engine follows the reference trajectories on the GPU (float32 and float64), the fused
#    step agrees with the reference step and draws jax.random's numbers there too, and the Pallas
#    kernel, compiled by Triton here (interpret mode only on CPU), follows the reference step with
#    the same samples (about a minute).
python -m pytest -q -m gpu tests/test_bench.py
python -m pytest -q tests/test_fused.py tests/test_rng.py tests/test_pallas.py

# 2-4. Targets first, then the Pallas kernel at the targets' R (simsam.bench.PALLAS_CONFIGS), then
# the grid; no configuration starts after 180 s, then the scaling section (time against T, peak
# device memory against R, T, K and d; about two minutes).
mkdir -p reports
python -m simsam.cli bench --gpu-suite --json --budget 180 --out reports/benchmarks_gpu.md \
    | tee reports/benchmarks_gpu.jsonl

# 5. The Pallas rows against the targets and the same run's naive-JAX figure.
python bench/pallas_targets.py reports/benchmarks_gpu.jsonl | tee -a reports/benchmarks_gpu.md
