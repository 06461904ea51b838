# %% [markdown]
# # A study's results in a notebook
#
# Every `simsam run NAME --out DIR` writes tidy tables next to its figure: `verdicts.csv` (one row
# per curve and reference), `curves.csv` (one row per curve and checkpoint) and `references.csv`
# (one row per reference and checkpoint), every number in its own numeric column (and Parquet
# copies with `pip install 'simsam[pandas]'`). This script, cell by cell (`# %%`), loads them as
# pandas DataFrames and redraws the figure. Run it on a study of your own:
#
#     simsam run quickstart --quick --out simsam-out/quickstart
#     SIMSAM_STUDY=simsam-out/quickstart python examples/notebook.py

# %%
import os
from pathlib import Path

import simsam

study = simsam.load(Path(os.environ.get("SIMSAM_STUDY", "simsam-out/quickstart")))
print(study.verdicts[["curve", "reference", "verdict", "fitted_rate", "theoretical_rate", "tightness_end"]])

# %% [markdown]
# Numbers are numbers: filter, compare and aggregate without parsing strings.

# %%
assert study.verdicts["fitted_rate"].dtype.kind == "f"
slack = study.verdicts["theoretical_rate"] - study.verdicts["fitted_rate"]
print("theoretical minus fitted rate, per curve:", dict(zip(study.verdicts["curve"], slack.round(8))))
last = study.curves[study.curves["reference"] == ""].groupby("curve")["t"].transform("max")
print(study.curves[study.curves["t"] == last][["curve", "t", "mean", "lo", "hi", "n_seeds"]])

# %% [markdown]
# The figure, redrawn from the tables (the same one `simsam report DIR` writes), and a plot of our
# own from the same DataFrame, on a Figure object (no pyplot state needed).

# %%
fig = study.figure()
fig.savefig(Path(os.environ.get("SIMSAM_FIGURE_OUT", ".")) / "redrawn.png", dpi=100)

from matplotlib.figure import Figure  # noqa: E402

own = Figure(figsize=(5, 3.5), layout="constrained")
ax = own.subplots()
ax.set_yscale("log")
for curve, rows in study.curves[study.curves["reference"] == ""].groupby("curve", sort=False):
    ax.plot(rows["x"], rows["mean"], label=curve)
    ax.fill_between(rows["x"], rows["lo"].clip(lower=rows["mean"].min() / 10), rows["hi"], alpha=0.2)
ax.legend()
own.savefig(Path(os.environ.get("SIMSAM_FIGURE_OUT", ".")) / "own.png", dpi=100)
