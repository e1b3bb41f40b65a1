"""Input formats -> a neutral intermediate (Observation / ReportDraft), one module per format.

``canonical`` (our own JSON), ``ngsi`` (FIWARE NGSI v2 and NGSI-LD), ``sensorthings`` (OGC
SensorThings Observations), ``open311`` (GeoReport v2); ``detect`` picks the format and
drives a parser over a batch. The topology-aware resolution into canonical events lives in
:mod:`pipeline.normalize`; ``normalize`` / ``Normalizer`` / ``NormalizeResult`` are
re-exported here lazily (pipeline.normalize imports these modules, so not at import time).
"""

from __future__ import annotations

from typing import Any

__all__ = ["NormalizeResult", "Normalizer", "normalize"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from pipeline import normalize as module

        return getattr(module, name)
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)
