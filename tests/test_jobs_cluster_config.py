"""cluster.yaml through Ray's own config validation; the KubeRay / Kubernetes manifests' structure."""
from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml
from jsonschema import ValidationError
from ray.autoscaler._private.util import prepare_config, validate_config

ROOT = Path(__file__).resolve().parent.parent
PINNED_IMAGE = re.compile(r"^[\w./-]+:\d+\.\d+\.\d+[\w.-]*$")  # a version tag, never :latest


def _load(name: str) -> dict:
    return yaml.safe_load((ROOT / name).read_text())


def _validated(cfg: dict) -> dict:
    """What `ray up` does before launching anything: fill provider defaults, then check the schema."""
    prepared = prepare_config(copy.deepcopy(cfg))
    validate_config(prepared)
    return prepared


def test_cluster_yaml_passes_ray_validation():
    cfg = _validated(_load("cluster.yaml"))
    types = cfg["available_node_types"]
    head = types[cfg["head_node_type"]]
    assert head["resources"].get("GPU", 0) == 0
    workers = {name: t for name, t in types.items() if name != cfg["head_node_type"]}
    assert workers and all(t["resources"]["GPU"] == 8 for t in workers.values())
    assert all(t["min_workers"] <= t["max_workers"] for t in workers.values())
    assert sum(t["max_workers"] for t in workers.values()) <= cfg["max_workers"]


def test_cluster_yaml_pins_image_installs_project_and_binds_dashboard_to_localhost():
    cfg = _load("cluster.yaml")
    for key in ("image", "head_image"):
        assert PINNED_IMAGE.match(cfg["docker"][key]), cfg["docker"][key]
    assert any("pip install" in c and "solve-verify[gpu]" in c for c in cfg["setup_commands"])
    assert cfg["file_mounts"]["~/solve-verify"] == "."
    head_start = " ".join(cfg["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in head_start and "0.0.0.0" not in head_start
    assert "RAY_AUTH_MODE=token" in head_start and "RAY_AUTH_MODE=token" in " ".join(cfg["worker_start_ray_commands"])
    assert "**/.git" in cfg["rsync_exclude"] and "**/runs" in cfg["rsync_exclude"]


@pytest.mark.parametrize("breakage", ["typo_key", "min_over_max", "head_not_a_type"])
def test_ray_validation_rejects_broken_variants(breakage):
    """The validation above can fail: the same checks reject a broken copy of our config."""
    cfg = _load("cluster.yaml")
    worker = cfg["available_node_types"]["worker.gpu8.a100"]
    if breakage == "typo_key":
        worker["min_wrkers"] = 1
    elif breakage == "min_over_max":
        worker["min_workers"] = cfg["max_workers"] + 1
    else:
        cfg["head_node_type"] = "head.gpu"
    with pytest.raises((ValidationError, ValueError)):
        _validated(cfg)


def _containers(pod_template: dict) -> list[dict]:
    return pod_template["spec"]["containers"]


def _check_ray_cluster_spec(spec: dict) -> None:
    assert spec["rayVersion"] == "2.60.0"
    assert spec["authOptions"] == {"mode": "token"}
    head = spec["headGroupSpec"]
    assert head["serviceType"] == "ClusterIP"  # never exposed outside the cluster
    head_res = _containers(head["template"])[0]["resources"]
    assert "nvidia.com/gpu" not in head_res["limits"]
    (gpu_group,) = spec["workerGroupSpecs"]
    assert gpu_group["minReplicas"] <= gpu_group["replicas"] <= gpu_group["maxReplicas"]
    res = _containers(gpu_group["template"])[0]["resources"]
    assert res["limits"]["nvidia.com/gpu"] == res["requests"]["nvidia.com/gpu"] == "8"
    for c in _containers(head["template"]) + _containers(gpu_group["template"]):
        assert PINNED_IMAGE.match(c["image"]), c["image"]


def test_kuberay_raycluster_manifest():
    doc = _load("k8s/raycluster.yaml")
    assert (doc["apiVersion"], doc["kind"]) == ("ray.io/v1", "RayCluster")
    _check_ray_cluster_spec(doc["spec"])


def test_kuberay_rayjob_manifest_runs_pipeline_then_analysis():
    doc = _load("k8s/rayjob.yaml")
    assert (doc["apiVersion"], doc["kind"]) == ("ray.io/v1", "RayJob")
    spec = doc["spec"]
    _check_ray_cluster_spec(spec["rayClusterSpec"])
    assert spec["shutdownAfterJobFinishes"] is True
    pipeline, analysis = spec["entrypoint"].split(" && ")
    assert pipeline.startswith("python -m pipeline.run ") and "run_id=math500-llama31-8b" in pipeline
    from pipeline.config import compose

    run = compose(pipeline.split()[3:])  # the overrides are a valid pipeline config
    assert (run.dataset.name, run.cluster.mode, run.budget.solutions) == ("math500", "streaming", 256)
    assert analysis == "python -m analysis.run run_dir=/mnt/shared/runs/math500-llama31-8b"
    assert yaml.safe_load(spec["runtimeEnvYAML"]) == {"env_vars": {"WANDB_MODE": "offline"}}


def test_nightly_cronjob_manifest_reads_token_from_secret():
    doc = _load("k8s/nightly-cronjob.yaml")
    assert (doc["apiVersion"], doc["kind"]) == ("batch/v1", "CronJob")
    assert len(doc["spec"]["schedule"].split()) == 5
    (container,) = doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert container["command"][:3] == ["python", "-m", "jobs.nightly"]
    (env,) = container["env"]
    assert env["name"] == "RAY_AUTH_TOKEN" and "secretKeyRef" in env["valueFrom"] and "value" not in env
    raycluster = _load("k8s/raycluster.yaml")
    assert env["valueFrom"]["secretKeyRef"]["name"] == raycluster["metadata"]["name"]
    assert f"http://{raycluster['metadata']['name']}-head-svc:8265" in container["command"]
