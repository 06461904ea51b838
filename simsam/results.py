"""Stored studies as pandas DataFrames: ``simsam.load(DIR)``.

pandas is an optional dependency (``pip install simsam[pandas]``), imported here only, on call;
the engine never imports it. Without pandas, :func:`simsam.tables.read` gives the same tables as
typed rows.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from simsam.errors import SimsamError
from simsam.tables import BOOL_COLUMNS, STR_COLUMNS, TABLES

MANIFEST = "manifest.json"  # simsam.store.MANIFEST, named here so that loading tables imports no JAX


@dataclasses.dataclass
class Study:
    """The tables of one study folder, or of every study under a folder (concatenated; the
    ``experiment`` column tells them apart). ``manifests``: experiment name -> its manifest."""

    verdicts: object  # pandas.DataFrame, one row per (experiment, curve, reference)
    curves: object  # one row per (experiment, curve, quantity, checkpoint)
    references: object  # one row per (experiment, curve, reference, checkpoint)
    summary: object  # one row per (experiment, curve): the final value and its interval
    manifests: dict

    def figure(self, experiment: str | None = None):
        """The figure of one study (the only one by default), redrawn from these tables."""
        from simsam import plotting

        names = list(self.manifests)
        if experiment is None:
            if len(names) != 1:
                raise SimsamError(f"experiment must name one of the loaded studies: {', '.join(names)}")
            experiment = names[0]
        if experiment not in self.manifests:
            raise SimsamError(f"experiment {experiment!r} is not loaded; loaded: {', '.join(names)}")

        def of(frame):
            return frame[frame["experiment"] == experiment] if len(frame) else frame

        return plotting.experiment_figure(of(self.curves), of(self.references), of(self.verdicts),
                                          **self.manifests[experiment].get("figure", {}))


def study_folders(folder: Path) -> list[Path]:
    """``folder`` itself if it holds a study (a manifest and its tables), else its study subfolders."""
    folder = Path(folder)
    if (folder / MANIFEST).is_file():
        return [folder]
    found = sorted(p.parent for p in folder.glob(f"*/{MANIFEST}") if (p.parent / "curves.csv").is_file())
    if not found:
        raise SimsamError(f"{str(folder)!r} holds no study: no {MANIFEST} with tidy tables (curves.csv) in it "
                          "or in its subfolders; write one with `simsam run NAME --out DIR`")
    return found


def load(folder) -> Study:
    """The tidy tables of the study in ``folder`` (or of every study in its subfolders) as DataFrames."""
    try:
        import pandas as pd
    except ImportError:
        raise SimsamError("simsam.load needs pandas: pip install 'simsam[pandas]' "
                          "(without it, simsam.tables.read(folder, name) gives typed rows)") from None
    frames: dict[str, list] = {name: [] for name in (*TABLES, "summary")}
    manifests = {}
    for study in study_folders(folder):
        manifest = json.loads((study / MANIFEST).read_text())
        if not (study / "curves.csv").is_file():
            raise SimsamError(f"{str(study)!r} was written by an older simsam without tidy tables; "
                              "rewrite it with `simsam run` (its stored runs are reused)")
        name = manifest.get("experiment", study.name)
        manifests[name] = manifest
        for table in frames:
            path = study / f"{table}.csv"
            if not path.is_file():
                continue
            frame = pd.read_csv(path, keep_default_na=False, na_values=["nan"],
                                dtype={c: str for c in STR_COLUMNS})
            for c in BOOL_COLUMNS & set(frame.columns):
                frame[c] = frame[c].astype(str) == "True"
            if table == "summary":
                frame.insert(0, "experiment", name)
            frames[table].append(frame)
    return Study(**{k: pd.concat(v, ignore_index=True) if v else pd.DataFrame() for k, v in frames.items()},
                 manifests=manifests)
