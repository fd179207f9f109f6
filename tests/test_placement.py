"""Replica placement across nodes, on a local multi-node Ray cluster (several raylets on this machine,
``ray.cluster_utils.Cluster``) where a custom resource ``gpu_slot`` stands in for a GPU.

- A slot node is removed mid-run (during solving) and a new one added: the run completes with every row
  exactly once, and the two verifier replicas (one slot each) land on the two slot nodes, the new one
  included; rows record replica_id and node_id.
- A tensor-parallel replica's placement group packs its ranks on one node.
Drivers run as subprocesses (the test session may already hold another local Ray).
"""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from conftest import pipeline_overrides
from pipeline.config import compose
from pipeline.placement import placement_bundles, replica_scheduling

ROOT = Path(__file__).resolve().parent.parent
NODE_ARGS = {"num_cpus": 2, "resources": {"gpu_slot": 1}, "object_store_memory": 100 * 2**20}


def test_scheduling_arguments_per_tensor_parallel_size():
    cfg = compose(["+cluster.replica_resources.gpu_slot=1"])
    one = replica_scheduling(cfg.cluster, cfg.solver)
    assert one == {"num_cpus": 1.0, "scheduling_strategy": "SPREAD", "resources": {"gpu_slot": 1.0}}
    tp = compose(["+cluster.replica_resources.gpu_slot=1", "solver.tensor_parallel_size=4", "solver.single_process=false"])
    args = replica_scheduling(tp.cluster, tp.solver)
    assert set(args) == {"num_cpus", "ray_remote_args_fn"}
    assert placement_bundles(tp.cluster, tp.solver) == [{"CPU": 1.0}] + [{"gpu_slot": 1.0}] * 4
    gpu = compose(["cluster=ray_cluster", "solver.tensor_parallel_size=2", "solver.single_process=false"])
    assert placement_bundles(gpu.cluster, gpu.solver)[1:] == [{"GPU": 1.0}] * 2


@pytest.fixture
def cluster():
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True, connect=False,
                head_node_args={"num_cpus": 4, "object_store_memory": 200 * 2**20})
    nodes = [c.add_node(**NODE_ARGS) for _ in range(2)]
    c.wait_for_nodes()
    yield c, nodes
    c.shutdown()


_PG_SCRIPT = """
import json, sys, ray
from pipeline.config import compose
from pipeline.placement import replica_scheduling
ray.init(address=sys.argv[1])
cfg = compose(["+cluster.replica_resources.gpu_slot=1", "solver.tensor_parallel_size=2", "solver.single_process=false"])
args = replica_scheduling(cfg.cluster, cfg.solver)

@ray.remote
class Replica:
    def nodes(self):
        pg = ray.util.get_current_placement_group()
        table = ray.util.placement_group_table(pg)
        return ray.get_runtime_context().get_node_id(), sorted(set(table["bundles_to_node_id"].values()))

actor = Replica.options(num_cpus=args["num_cpus"], **args["ray_remote_args_fn"]()).remote()
print(json.dumps(ray.get(actor.nodes.remote(), timeout=60)))
"""


def test_tensor_parallel_replica_gets_one_packed_group(tmp_path):
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True, connect=False, head_node_args={"num_cpus": 2, "object_store_memory": 100 * 2**20})
    try:
        packed = c.add_node(num_cpus=2, resources={"gpu_slot": 2}, object_store_memory=100 * 2**20)
        c.add_node(**NODE_ARGS)  # one slot only: cannot hold a 2-rank group
        c.wait_for_nodes()
        out = subprocess.run([sys.executable, "-c", _PG_SCRIPT, c.address], cwd=ROOT, capture_output=True,
                             text=True, timeout=180)
        assert out.returncode == 0, out.stderr[-3000:]
        actor_node, group_nodes = json.loads(out.stdout.strip().splitlines()[-1])
        assert group_nodes == [packed.node_id] and actor_node == packed.node_id
    finally:
        c.shutdown()


def test_replicas_spread_over_nodes_and_survive_a_node_replacement(cluster, tiny_model, tmp_path):
    from toyworld.task import make_problem_set, write_jsonl

    c, nodes = cluster
    data = tmp_path / "p.jsonl"
    write_jsonl(make_problem_set(per_level=8, seed=11, levels=[1, 2, 3]), data)
    s, v = 4, 1
    args = pipeline_overrides(tiny_model, data, tmp_path, f"cluster.address={c.address}",
                              "+cluster.replica_resources.gpu_slot=1", "solver.replicas=2", "verifier.replicas=2",
                              f"budget.solutions={s}", f"budget.verifications={v}", "cluster.batch_size=2",
                              "cluster.commit_interval_s=0", "run_id=spread")
    run_dir = tmp_path / "spread"
    log = open(tmp_path / "log.txt", "w")
    driver = subprocess.Popen([sys.executable, "-m", "pipeline.run", *args], cwd=ROOT, stdout=log,
                              stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    # Node changes must come from the main thread (Ray installs signal handlers for a new node).
    replaced = False
    try:
        deadline = time.monotonic() + 300
        while not replaced and driver.poll() is None and time.monotonic() < deadline:
            if list((run_dir / "solutions").glob("part-*.parquet")):
                c.remove_node(nodes[0])
                c.add_node(**NODE_ARGS)
                replaced = True
            time.sleep(0.2)
        assert driver.wait(timeout=420) == 0, (tmp_path / "log.txt").read_text()[-4000:]
    finally:
        if driver.poll() is None:
            driver.kill()
    assert replaced, "the run finished before a node could be replaced"
    sols = pl.read_parquet(sorted((run_dir / "solutions").glob("part-*.parquet")))
    vers = pl.read_parquet(sorted((run_dir / "verifications").glob("part-*.parquet")))
    n = 24
    assert sols.height == n * s and not sols.select("problem_id", "solution_idx").is_duplicated().any()
    assert vers.height == n * s * v and not vers.select("problem_id", "solution_idx", "verification_idx").is_duplicated().any()
    # The verifier pool started after the replacement: its two replicas sit on the two slot nodes (one of
    # them the new node). The solver replica on the removed node was restarted and its batches retried.
    slot_nodes = {nd.node_id for nd in nodes}
    assert vers["replica_id"].n_unique() == 2 and vers["node_id"].n_unique() == 2
    assert set(vers["node_id"]) - slot_nodes, "no work ran on the node added mid-run"
    assert nodes[0].node_id not in set(vers["node_id"])
