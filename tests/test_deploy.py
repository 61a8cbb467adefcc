"""The deploy files, checked against the code without a container engine or a cluster.

- compose: every app has its health check, migrate step, the variables its settings need, and
  its secrets from files; the gateway waits for the suite and is published on a set port.
- image: the Dockerfile's COPY lines (less .dockerignore) are the image's files, and every entry
  point (each app, its migrations, the demo loader) imports with only those on `sys.path`.
- Kubernetes: every manifest and every overlay's rendering (`kubectl kustomize`) validates
  against the API schemas; every deployable has probes, resources, an autoscaler, a disruption
  budget and a migrate Job; Secrets are referenced, never inlined; the network policies let
  only the gateway and the callers the architecture names reach a service, and only the apps
  reach the databases.

Each checker returns the problems it finds; the tests assert the real files have none and that
the checkers catch deliberately broken copies.
"""

from __future__ import annotations

import copy
import functools
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
OVERLAYS = ["demo", "production"]
SERVICES = ["brand_registry", "certification", "inspection", "assessment", "gateway"]
DNS = {name: name.replace("_", "-") for name in SERVICES}
ALWAYS_SET = {"database_url", "secret_key", "token_issuers"}
K8S_VERSION = "1.31.0"
# Who calls whom over HTTP (ARCHITECTURE.md): nothing else may reach a service.
CALLS = {
    ("gateway", "brand-registry"),
    ("gateway", "certification"),
    ("gateway", "inspection"),
    ("gateway", "assessment"),
    ("assessment", "brand-registry"),
    ("assessment", "certification"),
    ("assessment", "inspection"),
    ("inspection", "brand-registry"),
}
# Settings holding a secret value: given as NAME_FILE in compose (deploy/entrypoint.sh reads
# the file), from a Secret in Kubernetes, never as a literal.
SECRET_SUFFIXES = ("_SECRET_KEY", "_BOOTSTRAP_ADMIN_KEY", "PASSWORD")
FILE_SUFFIXES = ("_DATABASE_URL", "_SECRET_KEY", "_BOOTSTRAP_ADMIN_KEY", "_REDIS_URL")


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


# ---------------------------------------------------------------------------------------------
# compose


def load_compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    return data


def compose_problems(compose: dict[str, Any]) -> list[str]:
    problems = []
    services = compose["services"]
    images = set()
    for name in SERVICES:
        dns = DNS[name]
        service = services.get(dns)
        if service is None:
            problems.append(f"compose has no service {dns}")
            continue
        env = service.get("environment", {})
        images.add(service.get("image"))
        if env.get("SERVICE") != name:
            problems.append(f"{dns} does not set SERVICE={name}")
        if "healthcheck" not in service:
            problems.append(f"{dns} has no health check")
        elif "/health/ready" not in " ".join(service["healthcheck"]["test"]):
            problems.append(f"{dns} health check does not call /health/ready")
        migrate = f"migrate-{dns}"
        condition = service.get("depends_on", {}).get(migrate, {}).get("condition")
        if condition != "service_completed_successfully":
            problems.append(f"{dns} does not wait for {migrate}")
        job = services.get(migrate, {})
        if job.get("command") != ["migrate", name] or job.get("restart") != "no":
            problems.append(f"{migrate} is not a one-shot `migrate {name}`")
        else:
            images.add(job.get("image"))
            url = f"{name.upper()}_DATABASE_URL"
            if job.get("environment", {}).get(url) != env.get(url):
                problems.append(f"{migrate} migrates another database than {dns} uses")
        # NAME_FILE gives NAME (deploy/entrypoint.sh), for the settings FILE_SUFFIXES name.
        given = set(env) | {n.removesuffix("_FILE") for n in env if n.endswith("_FILE")}
        missing = required_env(name) - given
        if missing:
            problems.append(f"{dns} lacks {sorted(missing)}")
        for peer, port in re.findall(r"http://([a-z-]+):(\d+)", json.dumps(env)):
            if peer not in services or port != "8000":
                problems.append(f"{dns} points at {peer}:{port}, which no service answers")
        for dependency in service.get("depends_on", {}):
            if dependency not in services:
                problems.append(f"{dns} depends on unknown {dependency}")
    for name, service in services.items():
        env = service.get("environment", {})
        for variable, value in env.items():
            if variable.endswith(SECRET_SUFFIXES) and value:
                problems.append(f"{name} is given the secret {variable} inline, not from a file")
        mounted = set(service.get("secrets", []))
        for secret in re.findall(r"/run/secrets/(\w+)", json.dumps(env)):
            if secret not in mounted:
                problems.append(f"{name} reads /run/secrets/{secret} but does not mount it")
        for secret in mounted:
            if secret not in compose.get("secrets", {}):
                problems.append(f"{name} mounts the undeclared secret {secret}")
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith(".") and source not in compose.get("volumes", {}):
                problems.append(f"{name} mounts the undeclared volume {source}")
    if len(images) != 1:
        problems.append(
            f"the apps and migrate steps run different images: {sorted(map(str, images))}"
        )
    gateway = services.get("gateway", {})
    if not any(
        str(port).endswith(":8000") and "${QRP_GATEWAY_PORT" in str(port)
        for port in gateway.get("ports", [])
    ):
        problems.append("the gateway is not published on a configurable port")
    waits = gateway.get("depends_on", {})
    for dependency in ["redis", *(DNS[s] for s in SERVICES[:4])]:
        if waits.get(dependency, {}).get("condition") != "service_healthy":
            problems.append(f"the gateway does not wait for {dependency} to be healthy")
    postgres = services.get("postgres", {})
    if not any("docker-entrypoint-initdb.d" in v for v in postgres.get("volumes", [])):
        problems.append("postgres does not run the init script")
    loader = services.get("demo-loader", {})
    if loader.get("profiles") != ["demo"] or "scripts/load_demo.py" not in loader.get(
        "command", []
    ):
        problems.append("the demo loader is not an optional profile running scripts/load_demo.py")
    return problems


def test_compose_file_is_consistent() -> None:
    assert compose_problems(load_compose()) == []


def test_env_example_names_every_compose_variable() -> None:
    example = (DEPLOY / ".env.example").read_text()
    defined = set(re.findall(r"^([A-Z_]+)=", example, re.MULTILINE))
    used = set(re.findall(r"\$\{([A-Z_]+)", (DEPLOY / "docker-compose.yml").read_text()))
    assert used <= defined


def test_entrypoint_reads_the_secret_files_compose_names() -> None:
    text = (DEPLOY / "entrypoint.sh").read_text()
    case = re.search(r"^\s+(\*_DATABASE_URL.*)\) ;;$", text, re.MULTILINE)
    assert case, "entrypoint.sh lists the settings it reads from files"
    patterns = {p.strip() for p in case.group(1).split("|")}
    assert patterns == {f"*{s}" for s in FILE_SUFFIXES} | {"PGPASSWORD"}


def test_every_deployment_creates_the_same_databases() -> None:
    script = (DEPLOY / "postgres" / "init-databases.sh").read_text()
    databases = re.search(r"for database in (.+); do", script)
    assert databases
    assert databases.group(1).split() == SERVICES
    demo = yaml.safe_load_all((K8S / "overlays" / "demo" / "postgres.yaml").read_text())
    init = next(d for d in demo if d["kind"] == "ConfigMap")
    assert init["data"]["10-databases.sh"] == script


def test_checkers_catch_a_broken_compose_file() -> None:
    broken = copy.deepcopy(load_compose())
    services = broken["services"]
    del services["certification"]["healthcheck"]
    del services["inspection"]["environment"]["INSPECTION_DATABASE_URL"]
    del services["assessment"]["depends_on"]["migrate-assessment"]
    services["gateway"]["environment"]["GATEWAY_BOOTSTRAP_ADMIN_KEY"] = "qrp_admin_inline"
    services["brand-registry"]["secrets"].remove("secret_key")
    problems = compose_problems(broken)
    assert "certification has no health check" in problems
    assert any("inspection lacks" in p and "INSPECTION_DATABASE_URL" in p for p in problems)
    assert "assessment does not wait for migrate-assessment" in problems
    assert (
        "gateway is given the secret GATEWAY_BOOTSTRAP_ADMIN_KEY inline, not from a file"
        in problems
    )
    assert "brand-registry reads /run/secrets/secret_key but does not mount it" in problems


@pytest.mark.parametrize("name", SERVICES)
def test_probe_paths_exist_in_every_app(name: str) -> None:
    assert {"/health/live", "/health/ready"} <= app_paths(name)


# ---------------------------------------------------------------------------------------------
# the image


def ignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    parts = []
    for piece in re.split(r"(\*\*/|\*\*|\*|\?)", pattern.strip("/")):
        parts.append(
            {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}.get(piece, re.escape(piece))
        )
    return re.compile("".join(parts) + "$")


def ignored(path: str, patterns: list[str]) -> bool:
    """Whether the build context leaves out `path`, as Docker reads .dockerignore."""
    parents = [str(Path(*Path(path).parts[: i + 1])) for i in range(len(Path(path).parts))]
    excluded = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        regex = _pattern_regex(pattern.removeprefix("!"))
        if any(regex.match(candidate) for candidate in parents):
            excluded = not negate
    return excluded


def image_files(dockerfile: str) -> dict[str, Path]:
    """The files the final stage copies from the build context: path in the image -> source."""
    final = dockerfile.split("\nFROM ")[-1]
    workdir = re.search(r"^WORKDIR (\S+)$", final, re.MULTILINE)
    base = Path(workdir.group(1) if workdir else "/")
    patterns = ignore_patterns()
    files: dict[str, Path] = {}
    for source, target in re.findall(r"^COPY (?!--from)(\S+) (\S+)$", final, re.MULTILINE):
        origin = ROOT / source
        if not origin.exists():
            raise AssertionError(f"the Dockerfile copies {source}, which does not exist")
        destination = base / target
        found = (
            [origin] if origin.is_file() else sorted(p for p in origin.rglob("*") if p.is_file())
        )
        for path in found:
            relative = path.relative_to(ROOT).as_posix()
            if ignored(relative, patterns):
                continue
            inside = destination if origin.is_file() else destination / path.relative_to(origin)
            files[inside.as_posix()] = path
    return files


def image_pythonpath(dockerfile: str) -> list[str]:
    match = re.search(r"PYTHONPATH=(\S+)", dockerfile)
    assert match, "the Dockerfile sets PYTHONPATH"
    return match.group(1).split(":")


# Runs in a fresh interpreter whose sys.path is the image's: the venv's site-packages and the
# PYTHONPATH of the Dockerfile, mapped into a folder holding only the image's files.
ENTRY_POINTS = textwrap.dedent(
    """
    import importlib, json, os, runpy, sys
    image, repo, paths, services, checks = sys.argv[1:6]
    paths, services, checks = json.loads(paths), json.loads(services), json.loads(checks)
    venv = os.path.dirname(os.path.dirname(sys.executable))
    sys.path[:] = [p for p in sys.path if not p.startswith(repo) or p.startswith(venv)]
    sys.path[:0] = [image + p for p in paths]
    failures = {}

    def check(name, action):
        try:
            action()
        except BaseException as exc:
            if not (isinstance(exc, SystemExit) and exc.code == 0):
                failures[name] = f"{type(exc).__name__}: {exc}"

    def migrate(service):
        from kit import migrate
        if migrate.main([service]) != 0:
            raise RuntimeError("kit.migrate failed")

    def serve(service):
        importlib.import_module(f"{service}.app").build_app()

    def demo_loader():
        sys.argv = ["load_demo.py", "--help"]
        runpy.run_path(image + "/app/scripts/load_demo.py", run_name="__main__")

    if "apps" in checks:
        for service in services:
            check(f"{service}.app:build_app", lambda: serve(service))
            check(f"migrate {service}", lambda: migrate(service))
    if "demo" in checks:
        check("scripts/load_demo.py", demo_loader)
    outside = sorted(
        name for name, module in sys.modules.items()
        if (getattr(module, "__file__", None) or "").startswith(repo)
        and not module.__file__.startswith(venv)
    )
    if outside:
        failures["imported from outside the image"] = ", ".join(outside)
    print(json.dumps(failures))
    """
)


def entry_point_failures(dockerfile: str, tmp_path: Path, checks: list[str]) -> dict[str, str]:
    """What fails to import or run from the image's files alone, by entry point."""
    image = tmp_path / "image"
    for inside, source in image_files(dockerfile).items():
        target = image / inside.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    var = tmp_path / "var"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTHON", "QRP_")) and not key.endswith("_DATABASE_URL")
    }
    env.update(
        QRP_VAR_DIR=str(var), QRP_CONFIG_DIR=str(image / "app" / "config"), PYTHONSAFEPATH="1"
    )
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            ENTRY_POINTS,
            str(image),
            str(ROOT),
            json.dumps(image_pythonpath(dockerfile)),
            json.dumps(SERVICES),
            json.dumps(checks),
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    failures: dict[str, str] = json.loads(done.stdout.strip().splitlines()[-1])
    return failures


def test_dockerfile_builds_from_a_python_base_as_an_unprivileged_user() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    default = re.search(r"^ARG BASE_IMAGE=(\S+)$", text, re.MULTILINE)
    assert default
    assert "python:3.11" in default.group(1)
    assert re.findall(r"^FROM (\S+)", text, re.MULTILINE)[-1] == "${BASE_IMAGE}"
    assert "uv sync --frozen --no-dev" in text
    assert re.search(r"^USER 10001(:10001)?$", text, re.MULTILINE)
    assert re.search(r"^HEALTHCHECK .*\n.*/health/ready", text, re.MULTILINE)
    assert '"${SERVICE}.app:build_app"' in (DEPLOY / "entrypoint.sh").read_text()


def test_the_image_holds_what_the_apps_import_and_no_tests() -> None:
    files = image_files((DEPLOY / "Dockerfile").read_text())
    assert "/app/scripts/load_demo.py" in files
    assert "/app/demo/generate.py" in files
    for service in SERVICES:
        folder = "gateway" if service == "gateway" else f"services/{service}"
        assert f"/app/{folder}/app.py" in files
        assert any(f.startswith(f"/app/{folder}/migrations/versions/") for f in files)
    leaked = [f for f in files if "/tests/" in f or "__pycache__" in f or f.endswith(".pyc")]
    assert leaked == []


def test_every_entry_point_runs_from_the_image_files_alone(tmp_path: Path) -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert entry_point_failures(dockerfile, tmp_path, ["apps", "demo"]) == {}


def test_the_entry_point_check_catches_a_missing_copy(tmp_path: Path) -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text().replace("COPY demo demo\n", "")
    failures = entry_point_failures(dockerfile, tmp_path, ["demo"])
    assert "No module named 'demo'" in failures.get("scripts/load_demo.py", "")


def test_dockerignore_reads_as_docker_reads_it() -> None:
    patterns = ["*", "!services", "**/tests", "!keep/tests"]
    assert ignored("README.md", patterns)
    assert not ignored("services/a/app.py", patterns)
    assert ignored("services/a/tests/test_app.py", patterns)
    assert ignored("tests", patterns)
    assert not ignored("keep/tests/x.py", patterns)


# ---------------------------------------------------------------------------------------------
# Kubernetes


def manifest_files() -> list[Path]:
    return sorted(p for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml")


@functools.cache
def rendered(overlay: str) -> tuple[str, ...]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        if os.environ.get("CI"):
            pytest.fail("kubectl (with kustomize built in) is needed to render deploy/k8s")
        pytest.skip("kubectl (with kustomize built in) is not installed")
    done = subprocess.run(
        [kubectl, "kustomize", str(K8S / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return (done.stdout,)


def render(overlay: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(rendered(overlay)[0]) if d]


def schema_problems(docs: list[dict[str, Any]]) -> list[str]:
    problems = []
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(str(p) for p in exc.path)
            problems.append(f"{doc['kind']}/{doc['metadata']['name']}: {where}: {exc.message}")
    return problems


def _matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions", []):
        present = expression["key"] in labels
        value = labels.get(expression["key"])
        operator = expression["operator"]
        if operator == "In" and value not in expression["values"]:
            return False
        if operator == "NotIn" and value in expression["values"]:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def _admits(
    policies: list[dict[str, Any]], direction: str, subject: dict[str, str], peer: dict[str, str]
) -> bool:
    """Whether the policies let `subject` take (ingress) or make (egress) a connection with `peer`."""
    kind = "Ingress" if direction == "ingress" else "Egress"
    selecting = [
        p
        for p in policies
        if kind in p["spec"].get("policyTypes", ["Ingress"])
        and _matches(p["spec"]["podSelector"], subject)
    ]
    if not selecting:
        return True
    for policy in selecting:
        for rule in policy["spec"].get(direction, []):
            peers = rule.get("from" if direction == "ingress" else "to")
            if peers is None or any(
                "podSelector" in entry
                and "namespaceSelector" not in entry
                and _matches(entry["podSelector"], peer)
                for entry in peers
            ):
                return True
    return False


def reachable(docs: list[dict[str, Any]], source: dict[str, str], target: dict[str, str]) -> bool:
    """A connection from a pod of the suite: its egress and the target's ingress allow it."""
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    return _admits(policies, "egress", source, target) and _admits(
        policies, "ingress", target, source
    )


def admitted(docs: list[dict[str, Any]], source: dict[str, str], target: dict[str, str]) -> bool:
    """A connection from a pod the suite's egress policies do not govern: the target's ingress."""
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    return _admits(policies, "ingress", target, source)


def _pod_labels(docs: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    pods = {}
    for doc in docs:
        if doc["kind"] in ("Deployment", "StatefulSet", "Job"):
            labels = doc["spec"]["template"]["metadata"]["labels"]
            pods[f"{doc['kind']}/{doc['metadata']['name']}"] = labels
    return pods


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    containers: list[dict[str, Any]] = doc["spec"]["template"]["spec"]["containers"]
    return containers


def k8s_problems(docs: list[dict[str, Any]], overlay: str) -> list[str]:
    problems = schema_problems(docs)
    by_kind: dict[str, dict[str, dict[str, Any]]] = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc
    if "Secret" in by_kind:
        problems.append(f"Secrets inlined: {sorted(by_kind['Secret'])}")
    for doc in docs:
        if doc["kind"] in ("Deployment", "StatefulSet", "Job"):
            for container in _containers(doc):
                resources = container.get("resources", {})
                if not resources.get("requests") or not resources.get("limits"):
                    problems.append(
                        f"{doc['metadata']['name']}/{container['name']} has no resources"
                    )
                for variable in container.get("env", []):
                    name = variable["name"]
                    if name.endswith(FILE_SUFFIXES + SECRET_SUFFIXES) and "secretKeyRef" not in (
                        variable.get("valueFrom") or {}
                    ):
                        problems.append(f"{doc['metadata']['name']} sets {name} outside a Secret")
    deployments = by_kind.get("Deployment", {})
    for name in SERVICES:
        dns = DNS[name]
        deployment = deployments.get(dns)
        if deployment is None:
            problems.append(f"no Deployment {dns}")
            continue
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        container = _containers(deployment)[0]
        for probe, path in (("readinessProbe", "/health/ready"), ("livenessProbe", "/health/live")):
            if container.get(probe, {}).get("httpGet", {}).get("path") != path:
                problems.append(f"{dns} {probe} does not check {path}")
        env = {e["name"] for e in container.get("env", [])}
        missing = required_env(name) - env
        if missing:
            problems.append(f"{dns} lacks {sorted(missing)}")
        if {"name": "SERVICE", "value": name} not in container.get("env", []):
            problems.append(f"{dns} does not set SERVICE={name}")
        security = container.get("securityContext", {})
        if not security.get("runAsNonRoot") or not security.get("readOnlyRootFilesystem"):
            problems.append(f"{dns} may run as root or write its root file system")
        service = by_kind.get("Service", {}).get(dns)
        if service is None or not _matches(
            {"matchLabels": service["spec"]["selector"]}, pod_labels
        ):
            problems.append(f"no Service {dns} for its pods")
        job = by_kind.get("Job", {}).get(f"migrate-{dns}")
        if job is None or _containers(job)[0].get("args") != ["migrate", name]:
            problems.append(f"no migrate Job for {dns}")
        elif service is not None and _matches(
            {"matchLabels": service["spec"]["selector"]},
            job["spec"]["template"]["metadata"]["labels"],
        ):
            problems.append(f"Service {dns} would send requests to its migrate Job")
        hpa = by_kind.get("HorizontalPodAutoscaler", {}).get(dns)
        if hpa is None or hpa["spec"]["scaleTargetRef"]["name"] != dns:
            problems.append(f"no HorizontalPodAutoscaler for {dns}")
        pdb = by_kind.get("PodDisruptionBudget", {}).get(dns)
        if pdb is None or not _matches(pdb["spec"]["selector"], pod_labels):
            problems.append(f"no PodDisruptionBudget for {dns}")
    if "gateway" not in by_kind.get("Ingress", {}):
        problems.append("no Ingress for the gateway")
    gateway = deployments.get("gateway")
    if gateway and gateway["spec"]["replicas"] < 2:
        problems.append("the gateway runs a single replica")
    problems += network_problems(docs, overlay)
    return problems


def network_problems(docs: list[dict[str, Any]], overlay: str) -> list[str]:
    problems = []
    pods = _pod_labels(docs)
    servers = {DNS[s]: pods.get(f"Deployment/{DNS[s]}", {}) for s in SERVICES}
    outsider = {"app.kubernetes.io/name": "intruder"}
    for target, target_labels in servers.items():
        for source, source_labels in servers.items():
            allowed = (source, target) in CALLS
            if source != target and reachable(docs, source_labels, target_labels) != allowed:
                problems.append(f"{source} {'cannot' if allowed else 'can'} reach {target}")
        if target != "gateway" and admitted(docs, outsider, target_labels):
            problems.append(f"a pod outside the suite can reach {target}")
    apps = [labels for key, labels in pods.items() if not key.endswith(("postgres", "redis"))]
    if overlay == "demo":
        database = pods.get("StatefulSet/postgres", {})
        cache = pods.get("Deployment/redis", {})
        for labels in apps:
            if not reachable(docs, labels, database):
                problems.append(f"{labels['app.kubernetes.io/name']} cannot reach its database")
        if admitted(docs, outsider, database) or admitted(docs, outsider, cache):
            problems.append("a pod outside the suite can reach the databases")
        if not reachable(docs, servers["gateway"], cache):
            problems.append("the gateway cannot reach Redis")
        if any(reachable(docs, servers[DNS[s]], cache) for s in SERVICES[:4]):
            problems.append("a service other than the gateway can reach Redis")
    return problems


@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: str(p.relative_to(K8S)))
def test_every_manifest_validates_against_the_kubernetes_schemas(path: Path) -> None:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    assert schema_problems(docs) == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_overlay_renders_validates_and_is_consistent(overlay: str) -> None:
    assert k8s_problems(render(overlay), overlay) == []


def test_demo_brings_its_databases_and_production_expects_managed_ones() -> None:
    demo = {(d["kind"], d["metadata"]["name"]) for d in render("demo")}
    production = {(d["kind"], d["metadata"]["name"]) for d in render("production")}
    assert {("StatefulSet", "postgres"), ("Deployment", "redis")} <= demo
    assert not {k for k in production if k[1] in ("postgres", "redis")}
    egress = [
        rule
        for d in render("production")
        if d["kind"] == "NetworkPolicy"
        for rule in d["spec"].get("egress", [])
        if any("ipBlock" in peer for peer in rule["to"])
    ]
    assert {port["port"] for rule in egress for port in rule["ports"]} >= {5432, 6379}


def break_manifests(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A copy of rendered manifests with typical mistakes, one of each kind."""
    broken = copy.deepcopy(docs)
    found = {(d["kind"], d["metadata"]["name"]): d for d in broken}
    found["Deployment", "brand-registry"]["spec"]["replicas"] = "two"
    container = _containers(found["Deployment", "certification"])[0]
    container["livenesProbe"] = container.pop("livenessProbe")
    del _containers(found["Deployment", "inspection"])[0]["readinessProbe"]
    broken.append(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "inline"},
            "stringData": {"k": "v"},
        }
    )
    found["NetworkPolicy", "certification"]["spec"]["ingress"][0]["from"].append(
        {"podSelector": {}}
    )
    found["NetworkPolicy", "inspection"]["spec"]["egress"][0]["to"].append({"podSelector": {}})
    return broken


def test_validation_fails_on_a_broken_manifest() -> None:
    problems = k8s_problems(break_manifests(render("demo")), "demo")
    assert any(
        p.startswith("Deployment/brand-registry: spec.replicas: 'two' is not of type 'integer'")
        for p in problems
    )
    assert any(p.startswith("Deployment/certification: ") and "livenesProbe" in p for p in problems)
    assert "certification livenessProbe does not check /health/live" in problems
    assert "inspection readinessProbe does not check /health/ready" in problems
    assert "Secrets inlined: ['inline']" in problems
    assert "inspection can reach certification" in problems
    assert "a pod outside the suite can reach certification" in problems
