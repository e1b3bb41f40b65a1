"""Temporary re-export of `pipeline.units`, which moved down to the base floor.

Why: the topology's catalogue checks unit names, and the topology sits below ingest, so the
unit table had to move below both. `pipeline/sim/world.py` still imports it from here and
is being edited on another branch; once that lands, switch its import and delete this file.
"""

from pipeline.units import UnitError, convert

__all__ = ["UnitError", "convert"]
