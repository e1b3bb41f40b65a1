"""Reading a topology: strict YAML, then two validation passes, every error listed by path.

Why: one bad section must not hide the errors of another, so each top-level section is
validated on its own (keeping the valid items of a list that has bad ones), then the
references between sections are checked (:func:`cross_check`), then the boundary files
are read; only when nothing was found is the :class:`Topology` built.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BeforeValidator, TypeAdapter, ValidationError

from pipeline.topology.areas import Area, expand_area_files
from pipeline.topology.base import code_as_string
from pipeline.topology.boundaries import load_boundaries
from pipeline.topology.catalogue import Metric
from pipeline.topology.checks import cross_check
from pipeline.topology.errors import (
    ErrorList,
    TopologyError,
    convert,
    dedupe,
    key_path,
    short,
)
from pipeline.topology.incidents import check_unit_keys, read_unit_keys
from pipeline.topology.limits import (
    DEFAULT_LIMITS,
    LimitExceeded,
    Limits,
    expanded_size,
    file_size_problem,
    read_bounded,
)
from pipeline.topology.model import Topology, check_timezone
from pipeline.topology.reports import ReportCategory
from pipeline.topology.rules import Rule
from pipeline.topology.sensors import Sensor, read_sensor_file

__all__ = ["load_topology", "load_yaml", "parse_topology"]


# --------------------------------------------------------------------------- YAML


class _StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses duplicate keys instead of keeping the last one, and
    counts nodes: it stops composing past ``limits.nodes`` and refuses a document whose
    aliases would expand past it, before anything is constructed."""

    limits: Limits = DEFAULT_LIMITS
    _composed = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._composed += 1
        if self._composed > self.limits.nodes:
            msg = f"more than {self.limits.nodes:,} YAML nodes (the limit)"
            raise LimitExceeded(msg)
        return super().compose_node(parent, index)

    def get_single_data(self) -> Any:
        node = self.get_single_node()
        if node is None:
            return None
        if expanded_size(node, self.limits.nodes) > self.limits.nodes:
            msg = (
                f"its aliases expand to more than {self.limits.nodes:,} YAML nodes (the limit); "
                "an alias bomb?"
            )
            raise LimitExceeded(msg)
        return self.construct_document(node)


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    mapping: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError as exc:
            msg = "found an unhashable key"
            raise yaml.constructor.ConstructorError(None, None, msg, key_node.start_mark) from exc
        if key in mapping:
            msg = f"duplicate key {short(key)}"
            raise yaml.constructor.ConstructorError(None, None, msg, key_node.start_mark)
        mapping[key] = loader.construct_object(value_node, deep=True)
    return mapping


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


def load_yaml(text: str, limits: Limits = DEFAULT_LIMITS) -> Any:
    """Parse YAML safely (no tags that build objects; duplicate keys refused; node count
    and alias expansion bounded by ``limits``)."""
    loader = type("_BoundedLoader", (_StrictLoader,), {"limits": limits})
    try:
        return yaml.load(text, Loader=loader)  # noqa: S506  # a SafeLoader subclass
    except LimitExceeded as exc:
        raise TopologyError([("yaml", f"refused: {exc}")]) from exc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "yaml"
        problem = exc.problem or exc.context or "invalid YAML"
        raise TopologyError([(where, f"invalid YAML: {problem}")]) from exc
    except yaml.YAMLError as exc:
        raise TopologyError([("yaml", f"invalid YAML: {exc}")]) from exc
    except RecursionError as exc:
        raise TopologyError([("yaml", "invalid YAML: nested too deeply")]) from exc


# --------------------------------------------------------------------------- topology


def load_topology(path: str | Path, limits: Limits = DEFAULT_LIMITS) -> Topology:
    """Read, parse and validate a topology file; ``TopologyError`` lists every problem.

    Sizes are bounded by ``limits`` before anything is read whole or built.
    """
    file = Path(path)
    try:
        text = read_bounded(file, limits.topology_bytes)
    except LimitExceeded as exc:
        raise TopologyError([(str(file), f"refused: {exc}")]) from exc
    except OSError as exc:
        msg = f"cannot read {file}: {exc.strerror or exc}"
        raise TopologyError([(str(file), msg)]) from exc
    except UnicodeDecodeError as exc:
        msg = f"{file} is not UTF-8 text"
        raise TopologyError([(str(file), msg)]) from exc
    return parse_topology(load_yaml(text, limits), file.resolve().parent, limits)


def parse_topology(data: Any, base_dir: Path, limits: Limits = DEFAULT_LIMITS) -> Topology:
    """Validate a topology mapping (as YAML gives it); relative paths resolve in ``base_dir``."""
    if not isinstance(data, dict):
        kind = "empty" if data is None else type(data).__name__
        raise TopologyError([("", f"a topology must be a mapping of sections, not {kind}")])
    raw = dict(data)
    errors = _oversized_files(raw, base_dir, limits)
    if errors:
        raise TopologyError(errors)
    errors, from_file = _inline_sensor_file(raw, base_dir)
    if isinstance(raw.get("areas"), list):  # `{file: x.csv, level: street}` items
        raw["areas"], area_errors = expand_area_files(raw["areas"], base_dir)
        errors += area_errors
    fields = Topology.model_fields
    for key in raw:
        if key not in fields:
            known = ", ".join(fields)
            errors.append((key_path(key).lstrip("."), f"unknown section (known: {known})"))
    sections, section_errors = _validate_sections(raw, from_file=from_file)
    errors += section_errors
    errors += cross_check(sections, _known_names(raw))
    if "areas" in sections and "boundaries" in sections:
        by_code = {a.code: a for a in sections["areas"]}
        features, boundary_errors = load_boundaries(sections["boundaries"], base_dir, by_code)
        errors += boundary_errors
    else:
        features = None
    unit_keys, key_errors = _unit_keys(sections, base_dir)
    errors += key_errors
    if errors:
        raise TopologyError(dedupe(errors))
    try:
        # From the validated sections, not `raw`: validating every sensor a second time
        # doubled the load time and the peak memory of a large registry.
        context = {"base_dir": base_dir, "cross_checked": True}
        topology = Topology.model_validate(sections, context=context)
    except ValidationError as exc:  # every check above passed: only a bug gets here
        raise TopologyError(convert(exc, ())) from exc
    topology._features = features
    topology._unit_keys = unit_keys
    return topology


def _oversized_files(raw: Mapping[str, Any], base_dir: Path, limits: Limits) -> ErrorList:
    """Every file the topology names that is larger than its limit (checked before any is
    read: ``/dev/zero`` or a 5 GB registry is refused by size, not by running out of memory).
    Unreadable files are left to the section readers, which say why."""
    named: list[tuple[str, Any, int]] = []
    sensors, boundaries, incidents = (raw.get(k) for k in ("sensors", "boundaries", "incidents"))
    if isinstance(sensors, dict):
        named.append(("sensors.file", sensors.get("file"), limits.sensor_file_bytes))
    if isinstance(boundaries, str):
        boundaries = [boundaries]
    if isinstance(boundaries, list):
        named += [
            (f"boundaries[{n}]", b, limits.boundary_file_bytes) for n, b in enumerate(boundaries)
        ]
    if isinstance(incidents, dict):
        named.append(("incidents.unit_keys", incidents.get("unit_keys"), limits.keys_file_bytes))
    areas = raw.get("areas")
    for n, item in enumerate(areas if isinstance(areas, list) else []):  # else: the section says
        if isinstance(item, dict) and "file" in item:
            named.append((f"areas[{n}].file", item.get("file"), limits.area_file_bytes))
    errors: ErrorList = []
    for where, rel, limit in named:
        if not isinstance(rel, str) or not rel:
            continue
        try:
            problem = file_size_problem(base_dir / rel, limit)
        except OSError:
            continue
        if problem is not None:
            errors.append((where, f"refused: {problem}"))
    return errors


def _unit_keys(sections: Mapping[str, Any], base_dir: Path) -> tuple[Any, ErrorList]:
    """The keys file the ``incidents`` section names, read and checked (None: no section)."""
    section = sections.get("incidents")
    if section is None or section.unit_keys is None:
        return None, []
    keys, errors = read_unit_keys(section.unit_keys, base_dir)
    if "areas" in sections:
        errors += check_unit_keys(keys, {a.code for a in sections["areas"] if a is not None})
    return keys, errors


def _inline_sensor_file(raw: dict[str, Any], base_dir: Path) -> tuple[ErrorList, bool]:
    """Replace ``sensors: {file: ...}`` in ``raw`` by the file's rows (dropped on errors).

    Returns the file's errors and whether the sensors came from a file.
    """
    if not isinstance(raw.get("sensors"), dict):
        return [], False
    rows, errors = read_sensor_file(raw["sensors"], base_dir)
    if errors:
        raw.pop("sensors")
    else:
        raw["sensors"] = rows
    return errors, True


def _validate_sections(
    raw: Mapping[str, Any], *, from_file: bool
) -> tuple[dict[str, Any], ErrorList]:
    """Each section validated alone: the valid ones (or their valid items), and the errors."""
    errors: ErrorList = []
    sections: dict[str, Any] = {}
    for name, info in Topology.model_fields.items():
        if name not in raw:
            if info.is_required():
                errors.append((name, "is required"))
            continue
        try:
            sections[name] = _section_adapter(name).validate_python(raw[name])
        except ValidationError as exc:
            partial = _partial_section(name, raw[name])
            if partial is not None:
                sections[name] = partial
                sections.setdefault("_partial", set()).add(name)
            section_errors = convert(exc, (name,))
            if from_file and name == "sensors":
                section_errors = [
                    (p.replace("sensors[", "sensors.file[", 1), m) for p, m in section_errors
                ]
            errors += section_errors
    return sections, errors


_ITEM_TYPES: dict[str, Any] = {
    "areas": Area,
    "sensors": Sensor,
    "rules": Rule,
    "report_categories": ReportCategory,
    "metrics": Metric,
}


def _partial_section(name: str, value: Any) -> Any:
    """The valid items of a list (None where invalid) or mapping section that failed."""
    item = _ITEM_TYPES.get(name)
    if item is None:
        return None

    adapter = TypeAdapter(item)

    def check(entry: Any) -> Any:
        try:
            return adapter.validate_python(entry)
        except ValidationError:
            return None

    if name == "metrics" and isinstance(value, dict):
        valid = {k: check(v) for k, v in value.items() if isinstance(k, str)}
        return {k: v for k, v in valid.items() if v is not None}
    if name != "metrics" and isinstance(value, list):
        return tuple(check(entry) for entry in value)
    return None


def _known_names(raw: Mapping[str, Any]) -> dict[str, set[str]]:
    """Identifiers the raw sections list, for references into a section that failed."""

    def ids(section: str, key: str) -> set[str]:
        items = raw.get(section)
        if not isinstance(items, list):
            return set()
        return {str(code_as_string(i.get(key))) for i in items if isinstance(i, dict) and key in i}

    metrics = raw.get("metrics")
    sla = raw.get("sla")
    return {
        "sla": {str(k) for k in sla} if isinstance(sla, dict) else set(),
        "areas": ids("areas", "code"),
        "sensors": ids("sensors", "id"),
        "metrics": {str(k) for k in metrics} if isinstance(metrics, dict) else set(),
    }


_ADAPTERS: dict[str, TypeAdapter[Any]] = {}


def _section_adapter(name: str) -> TypeAdapter[Any]:
    """A validator for one top-level section, with the field's own constraints."""
    adapter = _ADAPTERS.get(name)
    if adapter is None:
        info = Topology.model_fields[name]
        annotation: Any = info.annotation
        if info.metadata:
            annotation = Annotated[(annotation, *info.metadata)]
        if name == "timezone":
            annotation = Annotated[str, BeforeValidator(check_timezone)]
        adapter = _ADAPTERS[name] = TypeAdapter(annotation)
    return adapter
