"""Importers: SLOs written for Sloth or OpenSLO, mapped to Observatory SLO resources.

Pure functions, no I/O: each importer takes the files' bytes (`Source`) and returns the SLO
documents it could map and a `Problem` for every field it could not express, naming the field's
path in the source document — nothing is dropped silently. The registry `IMPORTERS` is the one
place a source format is added.
"""

from __future__ import annotations

from collections.abc import Callable

from .common import Problem, Result, Source
from .openslo import import_openslo
from .sloth import import_sloth

# Every importer takes the sources and the --namespace flag (None when not given) plus its own options.
Importer = Callable[..., Result]
IMPORTERS: dict[str, Importer] = {"sloth": import_sloth, "openslo": import_openslo}

__all__ = ["IMPORTERS", "Importer", "Problem", "Result", "Source"]
