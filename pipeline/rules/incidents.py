"""The incident names the engine imports, re-exported from where they live now.

Why this module still exists: ``pipeline/engine/stages.py`` imports from it and the engine
is being rewritten elsewhere; new code imports :mod:`.lifecycle` (the state machine),
:mod:`.sla` (the escalation timer) and :mod:`.routing` (incident topics) directly. Remove
this module once the engine does.
"""

from __future__ import annotations

from pipeline.rules.lifecycle import IncidentEvent, Transition, apply, apply_detection
from pipeline.rules.routing import route
from pipeline.rules.sla import check_sla

__all__ = ["IncidentEvent", "Transition", "apply", "apply_detection", "check_sla", "route"]
