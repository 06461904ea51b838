"""Unified SAM, lambda in {0, 0.5, 1}, on the authors' ridge regression (paper_ridge), single element.

The Theorem 3.2 experiment (``unified_sam_pl``'s curves) on the Unified SAM paper's own problem,
built as the authors' code builds it (simsam.problems.paper.paper_ridge: n = d = 100, reg = 3/n,
their cond-10 construction, seed 3107), with 200 seeds per curve: a figure and a compliance table
in well under two minutes on a 2-core CPU.
"""
import dataclasses

from simsam.experiment import script
from simsam.problems.paper import paper_ridge
from simsam.samplers import Uniform


def build(opts):
    exp = script("unified_sam_pl").build(opts)
    problem = paper_ridge()
    return dataclasses.replace(
        exp, name="quickstart", seeds=16 if opts.quick else 200,
        title="Theorem 3.2: Unified SAM on the authors' ridge regression (paper_ridge), single-element sampling",
        curves=script("unified_sam_pl").curves(problem, Uniform(problem.n)), description=__doc__)
