"""Deployment files for tests: render kustomizations, read env files, load YAML documents.

Why kustomize itself: the real renderer (`kustomize build`, or `kubectl kustomize`, which
bundles it) applies generators, name hashes, patches and references exactly as a cluster
will see them; a renderer of our own would only prove that it agrees with itself.
Secrets are never committed (only `*.env.example`), so rendering happens in a copy of
`deploy/k8s` where every example has been copied to its real name.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.support.paths import ROOT

DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
COMPOSE = DEPLOY / "compose" / "compose.yaml"
DOCKERFILE = DEPLOY / "docker" / "Dockerfile"
KAFKA_POM = DEPLOY / "local" / "kafka" / "pom.xml"

Manifest = dict[str, Any]


def kustomize_command() -> list[str]:
    """How to run kustomize here: a `kustomize` binary, else `kubectl kustomize`."""
    if path := shutil.which("kustomize"):
        return [path, "build"]
    if path := shutil.which("kubectl"):
        return [path, "kustomize"]
    msg = (
        "no kustomize renderer: install kubectl (it bundles kustomize; Debian's package "
        "'kubectl' or your cloud SDK) or a kustomize v5 binary"
    )
    raise RuntimeError(msg)


def copy_with_examples(source: Path, target: Path) -> Path:
    """Copy `source` to `target`, each `X.example` also as `X` (the uncommitted real file)."""
    shutil.copytree(source, target)
    for example in target.rglob("*.example"):
        example.with_suffix("").write_bytes(example.read_bytes())
    return target


def render(directory: Path) -> list[Manifest]:
    """The objects one kustomization renders to (kustomize's own output, parsed)."""
    done = subprocess.run(
        [*kustomize_command(), str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        msg = f"kustomize failed for {directory}:\n{done.stderr}"
        raise AssertionError(msg)
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def load_documents(path: Path) -> list[Manifest]:
    """Every YAML document in one file (multi-document files included)."""
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines as kustomize and docker compose read them (comments and blanks skipped)."""
    pairs: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            key, _, value = stripped.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


def by_kind(objects: list[Manifest], kind: str) -> list[Manifest]:
    return [obj for obj in objects if obj.get("kind") == kind]


def one(objects: list[Manifest], kind: str) -> Manifest:
    """The single object of `kind`; fails when there are none or several."""
    found = by_kind(objects, kind)
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def kafka_version() -> str:
    """The Kafka version the tests run against (deploy/local/kafka/pom.xml)."""
    text = KAFKA_POM.read_text(encoding="utf-8")
    start = text.index("<kafka.version>") + len("<kafka.version>")
    return text[start : text.index("</kafka.version>", start)]
