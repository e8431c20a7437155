"""k8s/ manifests, checked without a cluster: they parse, core kinds validate against Kubernetes' schemas,
RayCluster/RayJob validate strictly against KubeRay's CRDs, every Ray version agrees, and the explorer reads,
read-only, what the RayJob writes."""

from __future__ import annotations

import gzip
import json
import re
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import tomllib
import yaml

from tests.conftest import REPO_ROOT

K8S = REPO_ROOT / "k8s"
CRDS = REPO_ROOT / "tests" / "data" / "kuberay"  # KubeRay v1.7.0 schemas, carried by the repository (README there)
KUBERNETES_VERSION = "1.30.0"


def documents() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        docs += [(path.name, doc) for doc in yaml.safe_load_all(path.read_text()) if doc]
    return docs


def strict(schema: Any) -> Any:
    """Close every object schema with properties (an API server would silently prune unknown fields)."""
    if isinstance(schema, dict):
        schema = {key: strict(value) for key, value in schema.items()}
        if schema.get("properties") and not schema.get("x-kubernetes-preserve-unknown-fields"):
            schema.setdefault("additionalProperties", False)
        return schema
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    return schema


def crd_schema(kind: str) -> dict[str, Any]:
    path = CRDS / f"ray.io_{kind.lower()}s.v1.schema.json.gz"
    return strict(json.loads(gzip.decompress(path.read_bytes())))


def test_manifests_parse_and_cover_the_deliverables() -> None:
    kinds = {doc["kind"] for _, doc in documents()}
    assert {"RayCluster", "RayJob", "PersistentVolumeClaim", "ConfigMap", "Deployment", "Service"} <= kinds


@pytest.mark.parametrize(("name", "doc"), [d for d in documents() if d[1]["apiVersion"] != "ray.io/v1"],
                         ids=lambda value: value if isinstance(value, str) else value.get("kind", ""))
def test_core_kinds_validate_against_kubernetes(name: str, doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize(("name", "doc"), [d for d in documents() if d[1]["apiVersion"] == "ray.io/v1"],
                         ids=lambda value: value if isinstance(value, str) else value.get("kind", ""))
def test_kuberay_kinds_validate_against_the_crds(name: str, doc: dict[str, Any]) -> None:
    jsonschema.validate(doc, crd_schema(doc["kind"]))


def test_strict_validation_catches_a_misspelled_field() -> None:
    (cluster,) = [doc for _, doc in documents() if doc["kind"] == "RayCluster"]
    broken = yaml.safe_load(yaml.safe_dump(cluster))
    broken["spec"]["workerGroupSpecs"][0]["minReplica"] = 0
    with pytest.raises(jsonschema.ValidationError, match="minReplica"):
        jsonschema.validate(broken, crd_schema("RayCluster"))


def test_gpu_workers_scale_from_zero_and_auth_is_on() -> None:
    (cluster,) = [doc for _, doc in documents() if doc["kind"] == "RayCluster"]
    spec = cluster["spec"]
    assert spec["authOptions"]["mode"] == "token" and spec["enableInTreeAutoscaling"] is True
    (group,) = spec["workerGroupSpecs"]
    assert group["minReplicas"] == 0
    limits = group["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits["nvidia.com/gpu"] == "1"


def test_every_pod_resolves_the_platform_package() -> None:
    """PYTHONPATH and workingDir point at the image's code directory"""
    home = re.search(r"SEGSWEEP_HOME=(\S+)", (K8S / "Dockerfile").read_text()).group(1)
    containers = []
    for _, doc in documents():
        if doc["kind"] == "RayCluster":
            spec = doc["spec"]
            containers += spec["headGroupSpec"]["template"]["spec"]["containers"]
            for group in spec["workerGroupSpecs"]:
                containers += group["template"]["spec"]["containers"]
        if doc["kind"] == "Deployment":
            containers += doc["spec"]["template"]["spec"]["containers"]
    assert len(containers) >= 3
    for container in containers:
        env = {item["name"]: item.get("value") for item in container["env"]}
        assert env["PYTHONPATH"] == home and container["workingDir"] == home


def test_ray_versions_agree() -> None:
    pin = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    ray_pin = next(d for d in pin if d.startswith("ray["))
    low = re.search(r">=\s*([\d.]+)", ray_pin).group(1)
    image = re.search(r"FROM rayproject/ray:([\d.]+)-", (K8S / "Dockerfile").read_text()).group(1)
    versions = {doc["spec"]["rayVersion"] for _, doc in documents() if doc["kind"] == "RayCluster"}
    import ray

    assert versions == {image} and image.startswith(low) and ray.__version__ == image


def test_the_job_runs_the_lambda_sweep_on_shared_storage() -> None:
    (job,) = [doc for _, doc in documents() if doc["kind"] == "RayJob"]
    entrypoint = job["spec"]["entrypoint"]
    assert entrypoint.startswith("python -m platform.sweep search_spaces/lambda.yaml --storage /mnt/results/")
    (claim,) = [doc for _, doc in documents() if doc["kind"] == "PersistentVolumeClaim"]
    assert "ReadWriteMany" in claim["spec"]["accessModes"]


def only(kind: str) -> dict[str, Any]:
    (doc,) = [doc for _, doc in documents() if doc["kind"] == kind]
    return doc


def test_strict_core_validation_catches_a_misspelled_field() -> None:
    broken = yaml.safe_load(yaml.safe_dump(only("Deployment")))
    broken["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {"httpGet": {"path": "/", "port": 8050}}
    with pytest.raises(jsonschema.ValidationError, match="readinesProbe"):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_explorer_reads_the_jobs_storage_read_only() -> None:
    deployment, claim, config = only("Deployment"), only("PersistentVolumeClaim"), only("ConfigMap")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    command = container["command"]
    assert command[:3] == ["python", "-m", "dashboards.app"]
    storage = command[command.index("--storage") + 1]
    job_storage = re.search(r"--storage\s+(\S+)", only("RayJob")["spec"]["entrypoint"]).group(1)
    assert storage == job_storage
    (volume,) = [v for v in pod["volumes"] if "persistentVolumeClaim" in v]
    assert volume["persistentVolumeClaim"] == {"claimName": claim["metadata"]["name"], "readOnly": True}
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
    assert mount["readOnly"] is True and storage.startswith(mount["mountPath"].rstrip("/") + "/")
    assert {"configMapRef": {"name": config["metadata"]["name"]}} in container["envFrom"]


def test_explorer_is_served_probed_and_unprivileged() -> None:
    deployment, service = only("Deployment"), only("Service")
    template = deployment["spec"]["template"]
    labels = template["metadata"]["labels"]
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert service["spec"]["selector"] and service["spec"]["selector"].items() <= labels.items()
    (container,) = template["spec"]["containers"]
    command = container["command"]
    port = int(command[command.index("--port") + 1])
    assert command[command.index("--host") + 1] == "0.0.0.0"
    (exposed,) = container["ports"]
    assert exposed["containerPort"] == port
    (service_port,) = service["spec"]["ports"]
    assert service["spec"]["type"] == "ClusterIP" and service_port["port"] == port
    assert service_port["targetPort"] in (port, exposed["name"])
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] == "/" and container[probe]["httpGet"]["port"] in (port, "http")
    assert {"cpu", "memory"} <= container["resources"]["requests"].keys() <= container["resources"]["limits"].keys()
    pod_security = template["spec"]["securityContext"]
    assert pod_security["runAsNonRoot"] is True and pod_security["runAsUser"] == 1000
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["workingDir"] == "/opt/segsweep"
    images = {c["image"] for _, doc in documents() if doc["kind"] == "RayCluster"
              for c in doc["spec"]["headGroupSpec"]["template"]["spec"]["containers"]}
    assert images == {container["image"]}
    assert "COPY --chown=ray:users dashboards ./dashboards" in (K8S / "Dockerfile").read_text()
