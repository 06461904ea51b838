"""JAX with float64 support on (``jax_enable_x64``): exact constants and bound checks need it.

Imported first by every subpackage and module of simsam that builds JAX arrays, so that float64 is
on however simsam is entered (``import simsam`` itself imports no JAX, so that the command line
answers ``--help`` and ``list`` at once). ``simulate(..., dtype="float32")`` still runs float32 iterates.
"""
import jax

jax.config.update("jax_enable_x64", True)
