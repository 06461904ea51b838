#!/usr/bin/env bash
# The GPU measurements owed by the benchmark work (bench/NOTES.md, "Owed on a GPU"), in one call of
# under 10 minutes on one H100:
#
#   bash bench/gpu_suite.sh
#
# writes reports/benchmarks_gpu.md (the report, machine named) and reports/benchmarks_gpu.jsonl
# (one JSON object per configuration). Needs jax with CUDA (pip install -e '.[cuda12]' beforehand:
# the device machine cannot download).
set -euo pipefail
cd "$(dirname "$0")/.."

python - <<'PY'
import jax, sys
if jax.default_backend() != "gpu":
    sys.exit(f"bench/gpu_suite.sh: JAX sees no GPU ({jax.devices()}); install jax[cuda12]")
print("devices:", jax.devices())
PY
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true

# 1. The engine follows the reference trajectories on the GPU (float32 and float64), and the fused
#    step agrees with the reference step and draws jax.random's numbers there too.
python -m pytest -q -m gpu tests/test_bench.py
python -m pytest -q tests/test_fused.py tests/test_rng.py

# 2-4. Targets first, then the grid; no configuration starts after 300 s, then the scaling section
# (time against T, peak device memory against R, T, K and d; about two minutes).
mkdir -p reports
python -m simsam.cli bench --gpu-suite --json --budget 300 --out reports/benchmarks_gpu.md \
    | tee reports/benchmarks_gpu.jsonl
