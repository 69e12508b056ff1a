"""The deployment kit (deploy/): the compose file parses (`docker-compose config`, Debian's), each Kubernetes
overlay renders (`kubectl kustomize`) and every object validates against the Kubernetes schemas
(`kubernetes-validate`, strict), with what an operator relies on: API replicas ready on /readyz, the database URL
from a Secret, vLLM on a GPU (or not, on CPU), an autoscaler and an Ingress onto the API; the settings files the kit
mounts are valid settings."""

import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from assistant.config import flatten, load_settings

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
KUBERNETES_VERSION = "1.30.0"


def rendered(overlay: str) -> dict[tuple[str, str], dict]:
    if shutil.which("kubectl") is None:
        pytest.skip("no kubectl (.ci/run installs Debian's kubernetes-client)")
    result = subprocess.run(["kubectl", "kustomize", str(DEPLOY / "kubernetes" / "overlays" / overlay)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return {(doc["kind"], doc["metadata"]["name"]): doc for doc in yaml.safe_load_all(result.stdout) if doc}


@pytest.mark.parametrize("overlay", ["gpu", "cpu"])
def test_kubernetes_overlays_render_and_validate(overlay):
    objects = rendered(overlay)
    for (kind, name), body in objects.items():
        kubernetes_validate.validate(body, KUBERNETES_VERSION, strict=True)  # raises with the path of the problem
        assert kind == "Namespace" or body["metadata"]["namespace"] == "assistant", name
    api = objects[("Deployment", "assistant-api")]["spec"]
    assert api["replicas"] >= 2
    container = api["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    env = {e["name"]: e for e in container["env"]}
    secret_ref = env["ASSISTANT_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    assert objects[("Secret", secret_ref["name"])]["stringData"][secret_ref["key"]].startswith("postgresql")
    vllm_service = objects[("Service", "assistant-vllm")]
    assert env["ASSISTANT_LLM_URL"]["value"] == f"http://{vllm_service['metadata']['name']}:8000/v1"
    vllm_pod = objects[("Deployment", "assistant-vllm")]["spec"]["template"]["spec"]
    vllm = vllm_pod["containers"][0]
    assert ("nvidia.com/gpu" in vllm["resources"]["limits"]) == (overlay == "gpu")
    prepare = vllm_pod["initContainers"][0]  # links the model that should serve where vLLM reads it
    assert prepare["args"][1:3] == ["models", "link"] and prepare["image"] == container["image"]
    assert prepare["args"][3] in vllm["args"]
    prepare_env = {e["name"]: e for e in prepare["env"]}  # it reads the promoted version from the database
    assert prepare_env["ASSISTANT_DATABASE_URL"] == env["ASSISTANT_DATABASE_URL"]
    hpa = objects[("HorizontalPodAutoscaler", "assistant-api")]["spec"]
    assert hpa["scaleTargetRef"]["name"] == "assistant-api" and hpa["minReplicas"] >= 2
    backend = objects[("Ingress", "assistant")]["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert ("Service", backend["name"]) in objects
    settings = yaml.safe_load(objects[("ConfigMap", "assistant-settings")]["data"]["assistant.yaml"])
    assert load_settings(flags={"home": "/tmp/unused", **flatten(settings)}, environ={}).settings.auth.required


def test_a_broken_manifest_is_caught():
    objects = rendered("gpu")
    api = objects[("Deployment", "assistant-api")]
    api["spec"]["replicas"] = "two"
    with pytest.raises(Exception, match="not of type 'integer'"):
        kubernetes_validate.validate(api, KUBERNETES_VERSION, strict=True)


def test_compose_file_is_valid(tmp_path):
    if shutil.which("docker-compose") is None:
        pytest.skip("no docker-compose (.ci/run installs Debian's)")
    compose = DEPLOY / "compose" / "docker-compose.yml"
    result = subprocess.run(["docker-compose", "-f", str(compose), "config"], capture_output=True, text=True,
                            env={"POSTGRES_PASSWORD": "test", "PATH": "/usr/bin:/bin"}, timeout=120)
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    services = config["services"]
    assert {"postgres", "prepare-model", "vllm", "api-1", "api-2", "nginx"} <= set(services)
    assert services["prepare-model"]["command"][1:3] == ["models", "link"]
    assert services["prepare-model"]["command"][3] in services["vllm"]["command"]
    assert services["prepare-model"]["environment"]["ASSISTANT_DATABASE_URL"] == \
        services["api-1"]["environment"]["ASSISTANT_DATABASE_URL"]
    for api in ("api-1", "api-2"):
        assert services[api]["environment"]["ASSISTANT_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert services[api]["environment"]["ASSISTANT_LLM_URL"] == "http://vllm:8000/v1"
    proxy = services["nginx"]["networks"]["internal"]["ipv4_address"]
    settings = load_settings(DEPLOY / "compose" / "assistant.yaml", {"home": str(tmp_path)}, environ={}).settings
    assert settings.auth.trusted_proxies == [proxy]  # the replicas trust the proxy's X-Forwarded-For
    nginx = (DEPLOY / "compose" / "nginx.conf").read_text()
    assert "server api-1:8000" in nginx and "server api-2:8000" in nginx

