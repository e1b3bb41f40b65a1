"""Where the repository's files are, for tests at any depth of the tree."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOPOLOGIES = ROOT / "topologies"
DEMO = TOPOLOGIES / "demo.yaml"
SHANGHAI = TOPOLOGIES / "shanghai.yaml"
CORPUS = ROOT / "tests" / "corpus"
FIXTURES = ROOT / "tests" / "fixtures"
