"""Loading is bounded: alias bombs, huge files and endless devices are refused up front."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from pipeline.topology import TopologyError, load_topology
from pipeline.topology.errors import short
from pipeline.topology.limits import Limits
from tests.support.paths import DEMO, TOPOLOGIES

DEMO_TEXT = DEMO.read_text(encoding="utf-8")


def _bomb(indent: str, depth: int = 9) -> str:
    """Nine levels of nine aliases each: 9**9 = 387 million strings once expanded."""
    lines = [f'{indent}- &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, depth):
        lines.append(f"{indent}- &a{i} [{','.join([f'*a{i - 1}'] * 9)}]")
    return "\n".join(lines)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "topology.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _refusal(path: Path, limits: Limits | None = None) -> list[tuple[str, str]]:
    tracemalloc.start()
    try:
        with pytest.raises(TopologyError) as caught:
            load_topology(path) if limits is None else load_topology(path, limits)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 100 * 2**20, f"peak {peak / 2**20:.0f} MiB while refusing"
    return caught.value.errors


@pytest.mark.parametrize(
    ("section", "anchor"),
    [
        ("description", "name: Demo city\n"),
        ("areas", "areas:\n"),
        ("rules", "rules:\n"),
    ],
)
def test_alias_bomb_is_refused_before_building(tmp_path: Path, section: str, anchor: str) -> None:
    assert anchor in DEMO_TEXT
    if section == "description":
        text = DEMO_TEXT.replace(anchor, anchor + "description:\n" + _bomb("  ") + "\n", 1)
    else:
        text = DEMO_TEXT.replace(anchor, anchor + _bomb("  ") + "\n", 1)
    errors = _refusal(_write(tmp_path, text))
    assert errors == [
        (
            "yaml",
            "refused: its aliases expand to more than 1,000,000 YAML nodes (the limit); "
            "an alias bomb?",
        )
    ]


def test_recursive_alias_is_refused(tmp_path: Path) -> None:
    text = DEMO_TEXT.replace("name: Demo city\n", "name: Demo city\ndescription: &x [*x]\n", 1)
    path = _write(tmp_path, text)
    with pytest.raises(TopologyError) as caught:
        load_topology(path)
    [(where, message)] = caught.value.errors
    assert where.startswith("line ") or where == "yaml"
    assert "alias" in message or "invalid YAML" in message


def test_a_few_aliases_still_load(tmp_path: Path) -> None:
    text = DEMO_TEXT.replace(
        "name: Demo city\n", "name: Demo city\ndescription: &d short text\n", 1
    )
    assert load_topology(_write(tmp_path, text)).id == "demo"


def test_too_many_nodes_stops_composing(tmp_path: Path) -> None:
    junk = "\n".join(f"k{i}: {i}" for i in range(2000))
    path = _write(tmp_path, "junk:\n" + "\n".join("  " + line for line in junk.splitlines()))
    errors = _refusal(path, Limits(nodes=1000))
    assert errors == [("yaml", "refused: more than 1,000 YAML nodes (the limit)")]


def test_a_50_mb_file_of_junk_is_refused_by_size(tmp_path: Path) -> None:
    path = tmp_path / "junk.yaml"
    line = b"junk_key_with_a_long_name_0000000000: value\n"
    with path.open("wb") as out:
        out.write(line * (50 * 2**20 // len(line) + 1))
    [(where, message)] = _refusal(path)
    assert where == str(path)
    assert message == f"refused: {path} is larger than 16 MiB (the limit)"


def test_sensor_file_from_dev_zero_is_refused_by_size(tmp_path: Path) -> None:
    head, tail = DEMO_TEXT.split("sensors:\n", 1)
    rest = tail[tail.index("datastreams:") :]
    path = _write(tmp_path, head + "sensors: {file: /dev/zero}\n" + rest)
    errors = _refusal(path, Limits(sensor_file_bytes=4 * 2**20))
    assert errors == [("sensors.file", "refused: /dev/zero is larger than 4 MiB (the limit)")]


def test_big_sensor_boundary_and_area_files_are_refused_by_size(tmp_path: Path) -> None:
    shanghai = (TOPOLOGIES / "shanghai.yaml").read_text(encoding="utf-8")
    for sub in ("sensors", "boundaries", "shanghai"):
        (tmp_path / sub).symlink_to(TOPOLOGIES / sub)
    path = _write(tmp_path, shanghai)
    limits = Limits(sensor_file_bytes=1000, boundary_file_bytes=1000, area_file_bytes=1000)
    errors = _refusal(path, limits)
    paths = [where for where, _ in errors]
    assert paths == [
        "sensors.file", "boundaries[0]", "boundaries[1]", "areas[17].file", "areas[18].file"
    ]  # fmt: skip
    assert all("is larger than 1,000 bytes (the limit)" in m for _, m in errors)


def test_excerpts_never_render_whole_values() -> None:
    rendered: list[int] = []

    class Loud:
        def __repr__(self) -> str:
            rendered.append(1)
            return "Loud()"

    huge = [Loud() for _ in range(100_000)]
    text = short(huge)
    assert len(text) <= 40 and text.startswith("[Loud(), Loud()")
    assert len(rendered) <= 4
    assert len(short("x" * 10_000_000)) <= 40


def test_messages_are_bounded() -> None:
    error = TopologyError([("a" * 1000, "b" * 100_000)])
    [(where, message)] = error.errors
    assert len(where) <= 300 and len(message) <= 300 and message.endswith("...")
