"""A sweep split across processes (simsam/engine/distributed.py) is one process's sweep, bit for bit.

* Two CPU processes under jax.distributed (a coordinator on 127.0.0.1, nothing else reached), each
  simulating half of the seeds into one shared --out: process 0 assembles, and the assembled run
  file and the report's tables are byte for byte those of one process.
* Without a coordinator: each process writes its share, ``simsam merge`` assembles; a missing
  share is named; bad --process-id / --num-processes / --coordinator are refused in one line.
"""
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from simsam.cli import main
from simsam.engine.distributed import Share

# One curve group (two grid points of the fused Unified SAM step); 7 seeds: the shares are unequal
# (4 and 3 seeds), and each is padded to the whole sweep's chunk.
EXPERIMENT = textwrap.dedent('''
    from simsam.experiment import Curve, Experiment
    from simsam.optimizers import UnifiedSAM
    from simsam.problems import ridge
    from simsam.samplers import Uniform


    def build(opts):
        problem = ridge(8, 3, consistent=False, seed=1)
        sampler = Uniform(problem.n)
        curves = tuple(Curve(f"lam {lam}", problem, UnifiedSAM(), UnifiedSAM.Params(gamma=0.1, rho=0.05, lam=lam),
                             sampler) for lam in (0.0, 0.5))
        return Experiment(name="tiny", title="tiny", curves=curves, seeds=opts.seeds or 7, steps=opts.steps or 40,
                          n_checkpoints=8)
''')
TIMEOUT_S = 180  # two fresh Python processes importing JAX and compiling: seconds when the machine is idle


@pytest.fixture(scope="module")
def experiments(tmp_path_factory):
    folder = tmp_path_factory.mktemp("experiments")
    (folder / "tiny.py").write_text(EXPERIMENT)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SIMSAM_EXPERIMENTS", str(folder))
        yield folder


@pytest.fixture(scope="module")
def one_process(experiments, tmp_path_factory) -> Path:
    """The sweep run by this (one) process."""
    out = tmp_path_factory.mktemp("one")
    assert main(["run", "tiny", "--out", str(out)]) == 0
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_files(out: Path) -> dict[str, bytes]:
    return {f.name: f.read_bytes() for f in sorted((out / "runs").glob("*.npz"))}


def assert_same_as_one_process(one: Path, many: Path):
    """Every run file of the one-process sweep is in ``many`` byte for byte, and so are the tables."""
    whole = run_files(one)
    assert len(whole) == 1  # one per curve group
    assert {k: v for k, v in run_files(many).items() if k in whole} == whole
    assert (many / "summary.csv").read_bytes() == (one / "summary.csv").read_bytes()


def test_two_processes_under_jax_distributed_give_the_one_process_result(experiments, one_process, tmp_path):
    env = {**os.environ, "SIMSAM_EXPERIMENTS": str(experiments), "JAX_PLATFORMS": "cpu",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[1]),
                                                     os.environ.get("PYTHONPATH")]))}
    coordinator = f"127.0.0.1:{free_port()}"
    shared = tmp_path / "shared"
    procs = [subprocess.Popen([sys.executable, "-m", "simsam.cli", "run", "tiny", "--out", str(shared),
                               "--process-id", str(i), "--num-processes", "2", "--coordinator", coordinator],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for i in range(2)]
    try:
        outputs = [p.communicate(timeout=TIMEOUT_S)[0] for p in procs]
    finally:
        for p in procs:
            p.kill()
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert "process 1 of 2: its share is in" in outputs[1] and "process 0 writes the report" in outputs[1]
    assert "assembled from 2 process shares" in outputs[0]
    assert_same_as_one_process(one_process, shared)


def test_shares_without_a_coordinator_are_merged_afterwards(experiments, one_process, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["tiny", "--out", str(out)]
    assert main(["run", *args, "--process-id", "1", "--num-processes", "2"]) == 0
    assert "simsam merge tiny --num-processes 2" in capsys.readouterr().out
    assert not (out / "summary.csv").exists()
    assert main(["merge", *args, "--num-processes", "2"]) == 2  # process 0's share is missing
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the share of process 0" in err and "--process-id 0 --num-processes 2" in err
    assert main(["run", *args, "--process-id", "0", "--num-processes", "2"]) == 0
    assert main(["merge", *args, "--num-processes", "2"]) == 0
    assert_same_as_one_process(one_process, out)


@pytest.mark.parametrize("argv, says", [
    (["--process-id", "2", "--num-processes", "2"], "--process-id must be"),
    (["--process-id", "-1", "--num-processes", "2"], "--process-id must be"),
    (["--process-id", "0", "--num-processes", "0"], "--num-processes must be"),
    (["--process-id", "0"], "--process-id and --num-processes must be given together"),
    (["--coordinator", "nohost", "--process-id", "0", "--num-processes", "2"], "--coordinator must be host:port"),
    (["--coordinator", "127.0.0.1:1"], "--coordinator host:port needs --process-id and --num-processes"),
    (["--process-id", "0", "--num-processes", "8", "--seeds", "7"], "--num-processes must be at most the number of seeds (7)"),
])
def test_bad_distribution_is_refused_in_one_line(experiments, tmp_path, capsys, argv, says):
    assert main(["run", "tiny", "--out", str(tmp_path / "o"), *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and says in err
    assert not (tmp_path / "o" / "runs").exists()


def test_shares_are_consecutive_seed_ranges_covering_every_seed():
    seeds = np.arange(10) * 3
    parts = [Share(i, 3).seeds(seeds) for i in range(3)]
    np.testing.assert_array_equal(np.concatenate(parts), seeds)
    assert [p.size for p in parts] == [4, 3, 3]
