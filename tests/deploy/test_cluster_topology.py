"""The cluster topology is the sample with the documented changes, and it is current.

Why: Kubernetes and compose load `deploy/k8s/base/topology/`, a copy of
`topologies/shanghai.yaml` for several workers. A copy drifts; this test fails the day the
sample changes without `python -m deploy.k8s.topology`, or the copy differs from the sample
in anything but the store, the replication and the file locations.
"""

from __future__ import annotations

from pathlib import Path

import faust
import pytest

from deploy.k8s import topology as cluster
from pipeline.topology import load_topology
from tests.support.paths import SHANGHAI


def test_the_committed_copy_is_current() -> None:
    assert cluster.main(["--check"]) == 0, "stale: run python -m deploy.k8s.topology"


def test_it_differs_from_the_sample_only_where_documented() -> None:
    sample = load_topology(SHANGHAI)
    derived = load_topology(cluster.BASE_TOPOLOGY_DIR / cluster.TOPOLOGY_KEY)
    assert derived.sinks.store == "clickhouse"
    assert derived.sinks.clickhouse == sample.sinks.clickhouse
    assert derived.topics.replication == cluster.REPLICATION
    assert derived.topics.model_dump(exclude={"replication"}) == sample.topics.model_dump(
        exclude={"replication"}
    )
    different = {"sinks", "topics", "boundaries"}
    assert derived.model_dump(exclude=different) == sample.model_dump(exclude=different)
    assert [Path(p).name for p in derived.boundaries] == [Path(p).name for p in sample.boundaries]


def test_a_topology_it_cannot_rewrite_is_refused(tmp_path: Path) -> None:
    text = SHANGHAI.read_text(encoding="utf-8").replace("  store: chdb\n", "")
    source = tmp_path / "city.yaml"
    source.write_text(text, encoding="utf-8")
    for folder in ("sensors", "boundaries", "shanghai"):
        (tmp_path / folder).symlink_to(SHANGHAI.parent / folder)
    with pytest.raises(cluster.ClusterTopologyError, match="sinks.store: chdb"):
        cluster.render(source)


def test_faust_takes_the_static_member_id_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The manifests set CONSUMER_GROUP_INSTANCE_ID; create_app passes no such setting, so
    static membership relies on Faust reading it from the environment."""
    monkeypatch.setenv("CONSUMER_GROUP_INSTANCE_ID", "cityops-worker-1")
    app = faust.App("cityops", broker="kafka://127.0.0.1:9", autodiscover=False)
    assert app.conf.consumer_group_instance_id == "cityops-worker-1"
