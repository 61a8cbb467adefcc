"""The deploy files, checked for what a typo would break (no container engine needed).

Each checker returns the problems it finds; the tests assert the real files have none, and
that the checkers do catch a removed health check, environment variable or migrate step.
"""

from __future__ import annotations

import copy
import importlib
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
SERVICES = ["brand_registry", "certification", "inspection", "assessment", "gateway"]
DNS = {name: name.replace("_", "-") for name in SERVICES}
ALWAYS_SET = {"database_url", "secret_key", "token_issuers"}
K8S_VERSION = "1.31.0"


def required_env(service: str) -> set[str]:
    """Variables a container of `service` must be given: its database, secrets, peers, keys."""
    settings_cls = importlib.import_module(f"{service}.settings").Settings
    prefix = settings_cls.model_config["env_prefix"]
    names = {
        field
        for field in settings_cls.model_fields
        if field in ALWAYS_SET or field.endswith("_url") or field.endswith("private_key_file")
    }
    return {f"{prefix}{name.upper()}" for name in names}


def app_paths(service: str) -> set[str]:
    module = importlib.import_module(f"{service}.app")
    return set(module.build_app().openapi()["paths"])


def load_compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    return data


def load_k8s() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((DEPLOY / "k8s" / "kustomization.yaml").read_text())
    docs = []
    for resource in kustomization["resources"]:
        docs += [d for d in yaml.safe_load_all((DEPLOY / "k8s" / resource).read_text()) if d]
    return docs


def compose_problems(compose: dict[str, Any]) -> list[str]:
    problems = []
    services = compose["services"]
    for name in SERVICES:
        dns = DNS[name]
        service = services.get(dns)
        if service is None:
            problems.append(f"compose has no service {dns}")
            continue
        if "healthcheck" not in service:
            problems.append(f"{dns} has no health check")
        elif "/health/ready" not in " ".join(service["healthcheck"]["test"]):
            problems.append(f"{dns} health check does not call /health/ready")
        migrate = f"migrate-{dns}"
        condition = service.get("depends_on", {}).get(migrate, {}).get("condition")
        if condition != "service_completed_successfully":
            problems.append(f"{dns} does not wait for {migrate}")
        job = services.get(migrate)
        if job is None or job.get("command") != ["python", "-m", "kit.migrate", name]:
            problems.append(f"{migrate} does not run kit.migrate {name}")
        if service.get("build", {}).get("args", {}).get("SERVICE") != name:
            problems.append(f"{dns} image is not built for SERVICE={name}")
        env = set(service.get("environment", {}))
        missing = required_env(name) - env
        if missing:
            problems.append(f"{dns} lacks {sorted(missing)}")
        for peer in re.findall(
            r"http://([a-z-]+):(\d+)", " ".join(map(str, service.get("environment", {}).values()))
        ):
            if peer[0] not in services or peer[1] != "8000":
                problems.append(f"{dns} points at {peer[0]}:{peer[1]}, which no service answers")
        for dependency in service.get("depends_on", {}):
            if dependency not in services:
                problems.append(f"{dns} depends on unknown {dependency}")
    gateway_ports = services.get("gateway", {}).get("ports", [])
    if "8000:8000" not in gateway_ports:
        problems.append("the gateway is not published on port 8000")
    return problems


def k8s_problems(docs: list[dict[str, Any]]) -> list[str]:
    problems = []
    by_kind: dict[str, dict[str, dict[str, Any]]] = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            problems.append(f"{doc['kind']}/{doc['metadata']['name']}: {exc.message}")
    for name in SERVICES:
        dns = DNS[name]
        deployment = by_kind.get("Deployment", {}).get(dns)
        if deployment is None:
            problems.append(f"no Deployment {dns}")
            continue
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        for probe, path in (("readinessProbe", "/health/ready"), ("livenessProbe", "/health/live")):
            if container.get(probe, {}).get("httpGet", {}).get("path") != path:
                problems.append(f"{dns} {probe} does not check {path}")
        resources = container.get("resources", {})
        if not resources.get("requests") or not resources.get("limits"):
            problems.append(f"{dns} has no resource requests and limits")
        env = {e["name"] for e in container.get("env", [])}
        missing = required_env(name) - env
        if missing:
            problems.append(f"{dns} lacks {sorted(missing)}")
        if {"name": "SERVICE", "value": name} not in container.get("env", []):
            problems.append(f"{dns} does not set SERVICE={name}")
        if dns not in by_kind.get("Service", {}):
            problems.append(f"no Service {dns}")
        job = by_kind.get("Job", {}).get(f"migrate-{dns}")
        if job is None or job["spec"]["template"]["spec"]["containers"][0]["command"] != [
            "python",
            "-m",
            "kit.migrate",
            name,
        ]:
            problems.append(f"no migrate Job for {dns}")
    for kind in ("PodDisruptionBudget", "HorizontalPodAutoscaler", "Ingress"):
        if "gateway" not in by_kind.get(kind, {}):
            problems.append(f"no {kind} for the gateway")
    gateway = by_kind.get("Deployment", {}).get("gateway")
    if gateway and gateway["spec"]["replicas"] < 2:
        problems.append("the gateway runs a single replica")
    return problems


def test_compose_file_is_consistent() -> None:
    assert compose_problems(load_compose()) == []


def test_kubernetes_manifests_validate_and_are_consistent() -> None:
    assert k8s_problems(load_k8s()) == []


@pytest.mark.parametrize("name", SERVICES)
def test_probe_paths_exist_in_every_app(name: str) -> None:
    assert {"/health/live", "/health/ready"} <= app_paths(name)


def test_dockerfile_runs_unprivileged_with_health_check_and_the_factory() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert "HEALTHCHECK" in text
    assert re.search(r"^USER 10001$", text, re.MULTILINE)
    assert "uv sync --frozen --no-dev" in text
    assert "${SERVICE}.app:build_app" in text
    for folder in re.findall(r"^COPY (\S+) \S+$", text, re.MULTILINE):
        if folder not in {"pyproject.toml", "uv.lock"}:
            assert (ROOT / folder).exists(), f"Dockerfile copies missing {folder}"


def test_env_example_names_every_compose_variable() -> None:
    example = (DEPLOY / ".env.example").read_text()
    defined = set(re.findall(r"^([A-Z_]+)=", example, re.MULTILINE))
    used = set(re.findall(r"\$\{([A-Z_]+)", (DEPLOY / "docker-compose.yml").read_text()))
    assert used <= defined


def test_checkers_catch_a_removed_health_check_and_env_variable() -> None:
    compose = load_compose()
    broken = copy.deepcopy(compose)
    del broken["services"]["certification"]["healthcheck"]
    del broken["services"]["inspection"]["environment"]["INSPECTION_DATABASE_URL"]
    del broken["services"]["assessment"]["depends_on"]["migrate-assessment"]
    problems = compose_problems(broken)
    assert "certification has no health check" in problems
    assert any(
        p.startswith("inspection lacks") and "INSPECTION_DATABASE_URL" in p for p in problems
    )
    assert "assessment does not wait for migrate-assessment" in problems

    docs = copy.deepcopy(load_k8s())
    for doc in docs:
        if doc["kind"] == "Deployment" and doc["metadata"]["name"] == "brand-registry":
            container = doc["spec"]["template"]["spec"]["containers"][0]
            del container["readinessProbe"]
            container["env"] = [
                e for e in container["env"] if e["name"] != "BRAND_REGISTRY_SECRET_KEY"
            ]
    problems = k8s_problems(docs)
    assert "brand-registry readinessProbe does not check /health/ready" in problems
    assert any("BRAND_REGISTRY_SECRET_KEY" in p for p in problems)
