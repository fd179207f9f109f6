"""Where engine replicas run: resources per replica, spread over nodes, one placement group per replica
when an engine spans several accelerators.

- ``tensor_parallel_size == 1``: the replica actor itself asks for ``cluster.replica_num_gpus`` GPUs and
  ``cluster.replica_resources``, and the pool is scheduled with Ray's ``SPREAD`` strategy so replicas
  land on different nodes when they can.
- ``tensor_parallel_size == T > 1``: each replica actor gets its own placement group (created when the
  actor is created, through Ray Data's ``ray_remote_args_fn``): bundle 0 = the actor's CPUs, bundles
  1..T = one accelerator each (``replica_num_gpus`` GPUs or ``replica_resources`` per bundle), packed on
  one node (``STRICT_PACK``: tensor parallelism wants NVLink, not the network). The actor captures the
  group for its children, so vLLM's Ray executor starts its T workers inside it.
On CPU machines, custom resources (e.g. ``{"gpu_slot": 1}``) stand in for GPUs in tests.
"""
from __future__ import annotations

from typing import Any

from pipeline.config import ClusterConfig, ModelConfig


def accelerator_bundle(cluster: ClusterConfig) -> dict[str, float]:
    """What one accelerator of a replica asks for."""
    bundle = dict(cluster.replica_resources)
    if cluster.replica_num_gpus:
        bundle["GPU"] = cluster.replica_num_gpus
    return bundle


def placement_bundles(cluster: ClusterConfig, model: ModelConfig) -> list[dict[str, float]]:
    """The placement group of one tensor-parallel replica: its actor's CPUs, then one bundle per rank."""
    return [{"CPU": cluster.replica_num_cpus}] + [accelerator_bundle(cluster)] * model.tensor_parallel_size


def replica_scheduling(cluster: ClusterConfig, model: ModelConfig) -> dict[str, Any]:
    """Keyword arguments for ``Dataset.map_batches`` that place one replica of ``model``."""
    if model.tensor_parallel_size <= 1:
        args: dict[str, Any] = {"num_cpus": cluster.replica_num_cpus, "scheduling_strategy": "SPREAD"}
        if cluster.replica_num_gpus:
            args["num_gpus"] = cluster.replica_num_gpus
        if cluster.replica_resources:
            args["resources"] = dict(cluster.replica_resources)
        return args
    bundles = placement_bundles(cluster, model)

    def one_group_per_replica() -> dict[str, Any]:
        from ray.util.placement_group import placement_group
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        group = placement_group(bundles, strategy="STRICT_PACK")
        return {"scheduling_strategy": PlacementGroupSchedulingStrategy(
            group, placement_group_bundle_index=0, placement_group_capture_child_tasks=True)}

    # The actor holds bundle 0's CPUs; the accelerators belong to the engine's workers.
    return {"num_cpus": cluster.replica_num_cpus, "ray_remote_args_fn": one_group_per_replica}
