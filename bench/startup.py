"""Start-up time of the command line: wall seconds of a few commands, best of 5 each.

    python bench/startup.py

`--help`, `list` and argument errors import neither JAX nor matplotlib (tests/test_startup.py) and
should answer in well under a second; a run's first output waits for JAX.
"""
import subprocess
import sys
import time

COMMANDS = (["--help"], ["list"], ["run", "no_such_experiment"], ["run", "quickstart", "--seeds", "0"])


def main() -> None:
    base = [sys.executable, "-m", "simsam.cli"]
    subprocess.run([sys.executable, "-c", "import jax"], check=True)  # warm the file cache
    jax_s = min(_time([sys.executable, "-c", "import jax"]) for _ in range(3))
    print(f"{'command':<40} best of 5 (s)")
    for argv in COMMANDS:
        best = min(_time(base + argv) for _ in range(5))
        print(f"simsam {' '.join(argv):<33} {best:.2f}")
    scale = '(python -c "import jax", for scale)'
    print(f"{scale:<40} {jax_s:.2f}")


def _time(cmd) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


if __name__ == "__main__":
    main()
