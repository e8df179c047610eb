"""Static checks of the deployment (no Docker engine or cluster on CI): the compose files, the
Dockerfiles and their build contexts, the Prometheus and Grafana configuration, the Kubernetes
manifests, and the container health probe (that one runs for real against a loopback server).

Each check is a function returning a list of problems, so every one is also run on a broken
in-memory copy to show it can fail.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import re
import shlex
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "prepicm.json"

# ---- the contract the services publish (docs/deploy.md; edge/metrics.py, cloud/metrics.py) ----

#: metric name as scraped → type. A counter is listed with its `_total` sample name.
CONTRACT_METRICS: dict[str, str] = {
    "prepicm_edge_frames_total": "counter",
    "prepicm_edge_frame_bits": "histogram",
    "prepicm_edge_frame_bpp": "histogram",
    "prepicm_edge_stage_seconds": "histogram",
    "prepicm_edge_spool_frames": "gauge",
    "prepicm_edge_spool_dropped_total": "counter",
    "prepicm_edge_bits_saved_total": "counter",
    "prepicm_edge_plain_bits_total": "counter",
    "prepicm_cloud_frames_total": "counter",
    "prepicm_cloud_stage_seconds": "histogram",
    "prepicm_cloud_batch_size": "histogram",
    "prepicm_cloud_frame_bits": "histogram",
    "prepicm_cloud_duplicates_total": "counter",
}
#: beyond the contract: the dashboard may use these only while the service module defines them
EXTENSION_METRICS: dict[str, str] = {
    # NPP bits of the sampled frames: the net saving is 1 - sampled / plain
    "prepicm_edge_sampled_bits_total": "counter",
}
METRIC_MODULES = {"edge": REPO / "edge" / "metrics.py", "cloud": REPO / "cloud" / "metrics.py"}

#: settings of each service (environment prefix → names), as agreed between the services
CONTRACT_SETTINGS: dict[str, set[str]] = {
    "PREPICM_EDGE_": {"HOST", "PORT", "CLOUD_URL", "CLOUD_TOKEN", "CAMERA_TOKEN", "DEV", "NPP_ARTIFACT",
                      "NPP_BACKEND", "CODEC", "QUALITY", "SPOOL_DIR", "SPOOL_MAX_BYTES", "ENCODE_WORKERS",
                      "PLAIN_SAMPLE_EVERY", "MAX_BODY_BYTES", "MAX_PIXELS"},
    "PREPICM_CLOUD_": {"HOST", "PORT", "DATABASE_URL", "TOKEN", "DEV", "TASKS", "DEVICE", "MAX_BATCH",
                       "MAX_DELAY_MS", "MAX_BODY_BYTES", "MAX_PIXELS"},
}
SETTINGS_PACKAGES = {"PREPICM_EDGE_": REPO / "edge", "PREPICM_CLOUD_": REPO / "cloud"}
#: variables of shared.runtime and the libraries, allowed in any service's environment
RUNTIME_VARS = {"PREPICM_SHARED_DIR", "PREPICM_CACHE_DIR", "PREPICM_ENGINE_CACHE", "PREPICM_NPP_BACKEND",
                "PREPICM_X265_POOLS", "PREPICM_X265_FRAME_THREADS", "PREPICM_ORT_THREADS",
                "PREPICM_TORCH_THREADS", "PREPICM_ENCODE_WORKERS", "TORCH_HOME", "XDG_CACHE_HOME",
                "MPLCONFIGDIR", "PYTHONPATH"}
SERVICES = {"edge": 8000, "cloud": 8001}
REQUIRED_VARS = {"PREPICM_TOKEN", "POSTGRES_PASSWORD", "GRAFANA_ADMIN_PASSWORD"}


# ---- loading ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tagged:
    """A compose YAML value written with a merge tag (`!reset`, `!override`)."""

    tag: str
    value: Any


class ComposeLoader(yaml.SafeLoader):
    pass


def _tagged(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> Tagged:
    if isinstance(node, yaml.SequenceNode):
        value: Any = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:
        value = loader.construct_scalar(node)  # type: ignore[arg-type]
    return Tagged(tag_suffix, value)


ComposeLoader.add_multi_constructor("!", _tagged)


def load_compose(path: Path) -> dict[str, Any]:
    return yaml.load(path.read_text(), Loader=ComposeLoader)  # a SafeLoader subclass: no arbitrary objects


def extras() -> set[str]:
    return set(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"])


def env_of(service: dict[str, Any]) -> dict[str, Any]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # ["KEY=value", "KEY"]
        return dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return dict(env)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose(REPO / "docker-compose.yml")


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


@pytest.fixture(scope="module")
def manifests() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        docs += [(path.name, d) for d in yaml.safe_load_all(path.read_text()) if d is not None]
    return docs


# ---- compose ----------------------------------------------------------------------------------

_INTERP = re.compile(r"\$(\$|\{[^}]*\}|[A-Za-z_][A-Za-z0-9_]*)")
_VAR_FORM = re.compile(r"^\{([A-Za-z_][A-Za-z0-9_]*)(?::?\?(.+)|:?-(.*))\}$", re.S)


def interpolation_problems(text: str) -> list[str]:
    """`$VAR` / `${VAR}` with neither a default (`:-`) nor a required message (`:?`); `$$` is literal."""
    problems = []
    for m in _INTERP.finditer(text):
        token = m.group(1)
        if token == "$":
            continue
        form = _VAR_FORM.match(token)
        if form is None:
            problems.append(f"${token}: write ${{VAR:?why}} (required) or ${{VAR:-default}}")
        elif form.group(2) is not None and not form.group(2).strip():
            problems.append(f"${token}: the required-variable message is empty")
    return problems


def required_vars(text: str) -> set[str]:
    return {m.group(1) for m in re.finditer(r"\$\{([A-Za-z_][A-Za-z0-9_]*):\?[^}]+\}", text)}


def _healthcheck_ok(name: str, svc: dict[str, Any]) -> list[str]:
    hc = svc.get("healthcheck")
    if not isinstance(hc, dict) or hc.get("disable") or not hc.get("test"):
        return [f"{name}: no healthcheck"]
    test = hc["test"]
    if isinstance(test, list) and (test[0] == "NONE" or test[0] not in ("CMD", "CMD-SHELL")):
        return [f"{name}: healthcheck test {test!r} must start with CMD or CMD-SHELL"]
    return []


def compose_problems(compose: dict[str, Any]) -> list[str]:
    """Healthchecks everywhere, depends_on on healthy services, the services' ports and wiring."""
    problems: list[str] = []
    services: dict[str, dict[str, Any]] = compose.get("services") or {}
    for name in ("edge", "cloud", "postgres", "prometheus", "grafana"):
        if name not in services:
            problems.append(f"service {name} missing")
    for name, svc in services.items():
        problems += _healthcheck_ok(name, svc)
        deps = svc.get("depends_on") or {}
        if isinstance(deps, list):
            problems.append(f"{name}: depends_on as a list (no condition); use condition: service_healthy")
            deps = {}
        for dep, cond in deps.items():
            if dep not in services:
                problems.append(f"{name}: depends on unknown service {dep}")
            if not isinstance(cond, dict) or cond.get("condition") != "service_healthy":
                problems.append(f"{name}: depends_on {dep} without condition: service_healthy")
        for vol in svc.get("volumes") or []:
            src = vol.split(":", 1)[0] if isinstance(vol, str) else vol.get("source", "")
            if src.startswith("./deploy/") and not (REPO / src).exists():
                problems.append(f"{name}: mounts {src}, which does not exist")
            if not src.startswith((".", "/", "$")) and src not in (compose.get("volumes") or {}):
                problems.append(f"{name}: named volume {src} not declared under volumes:")
        if "build" in svc:
            build = svc["build"]
            dockerfile = REPO / build.get("context", ".") / build.get("dockerfile", "Dockerfile")
            if not dockerfile.is_file():
                problems.append(f"{name}: {dockerfile} missing")
            for extra in str((build.get("args") or {}).get("EXTRAS", "")).split(","):
                if extra and extra not in extras():
                    problems.append(f"{name}: build extra {extra!r} is not in pyproject.toml")

    for name, port in SERVICES.items():
        svc = services.get(name)
        if svc is None:
            continue
        published = [str(p).rsplit(":", 1)[-1] for p in svc.get("ports") or []]
        if str(port) not in published:
            problems.append(f"{name}: container port {port} not published ({svc.get('ports')})")
        test = " ".join(map(str, (svc.get("healthcheck") or {}).get("test", [])))
        if f"127.0.0.1:{port}/" not in test:
            problems.append(f"{name}: healthcheck does not probe port {port}: {test}")
        build = svc.get("build") or {}
        if not str(build.get("dockerfile", "")).endswith(f"Dockerfile.{name}"):
            problems.append(f"{name}: not built from deploy/Dockerfile.{name}")
    edge, cloud = services.get("edge", {}), services.get("cloud", {})
    if env_of(edge).get("PREPICM_EDGE_CLOUD_URL") != "http://cloud:8001":
        problems.append("edge: PREPICM_EDGE_CLOUD_URL must be http://cloud:8001")
    if "@postgres:5432/" not in str(env_of(cloud).get("PREPICM_CLOUD_DATABASE_URL", "")):
        problems.append("cloud: PREPICM_CLOUD_DATABASE_URL does not point at the postgres service")
    devices = ((edge.get("deploy") or {}).get("resources") or {}).get("reservations", {}).get("devices") or []
    if not any(d.get("driver") == "nvidia" and "gpu" in d.get("capabilities", []) for d in devices):
        problems.append("edge: no NVIDIA GPU reservation")
    pg = " ".join(map(str, (services.get("postgres", {}).get("healthcheck") or {}).get("test", [])))
    if "pg_isready" not in pg:
        problems.append("postgres: healthcheck is not pg_isready")
    return problems


def settings_problems(compose_files: list[dict[str, Any]], extra_envs: list[dict[str, str]]) -> list[str]:
    """Every PREPICM_EDGE_* / PREPICM_CLOUD_* name set anywhere is a setting of that service."""
    problems = []
    envs: list[dict[str, Any]] = list(extra_envs)
    for c in compose_files:
        envs += [env_of(svc) for svc in (c.get("services") or {}).values()]
    known = {prefix: names | settings_fields(prefix) for prefix, names in CONTRACT_SETTINGS.items()}
    for env in envs:
        for key in env:
            prefix = next((p for p in CONTRACT_SETTINGS if key.startswith(p)), None)
            if prefix is None:
                if key.startswith("PREPICM_") and key not in RUNTIME_VARS and not key.startswith("PREPICM_UID"):
                    problems.append(f"{key}: not a setting of any service nor of shared.runtime")
            elif key[len(prefix):].upper() not in known[prefix]:
                problems.append(f"{key}: unknown setting (known: {sorted(known[prefix])})")
    return problems


def settings_fields(prefix: str) -> set[str]:
    """Field names of the service's pydantic-settings class, when the service defines one yet."""
    fields: set[str] = set()
    for src in SETTINGS_PACKAGES[prefix].rglob("*.py"):
        text = src.read_text()
        if f'env_prefix="{prefix}"' in text or f"env_prefix='{prefix}'" in text:
            fields |= {m.upper() for m in re.findall(r"^    ([A-Za-z_][A-Za-z0-9_]*)\s*:", text, re.M)}
    return fields


def test_compose_stack_is_complete_and_healthchecked(compose: dict[str, Any]) -> None:
    assert compose_problems(compose) == []


def test_compose_check_catches_a_broken_copy(compose: dict[str, Any]) -> None:
    broken = copy.deepcopy(compose)
    del broken["services"]["prometheus"]["healthcheck"]
    broken["services"]["edge"]["depends_on"]["cloud"]["condition"] = "service_started"
    broken["services"]["cloud"]["ports"] = ["8002:8002"]
    broken["services"]["edge"]["deploy"] = {}
    broken["services"]["cloud"]["build"]["args"]["EXTRAS"] = "cloud,no-such-extra"
    problems = compose_problems(broken)
    assert "prometheus: no healthcheck" in problems
    assert "edge: depends_on cloud without condition: service_healthy" in problems
    assert any("cloud: container port 8001 not published" in p for p in problems)
    assert "edge: no NVIDIA GPU reservation" in problems
    assert "cloud: build extra 'no-such-extra' is not in pyproject.toml" in problems


def test_required_variables_fail_loudly() -> None:
    for path in (REPO / "docker-compose.yml", REPO / "docker-compose.dev.yml", DEPLOY / "compose" / "cpu.yml"):
        assert interpolation_problems(path.read_text()) == [], path.name
    assert required_vars((REPO / "docker-compose.yml").read_text()) >= REQUIRED_VARS
    # the check can fail: a bare ${VAR} would start the stack with an empty secret
    assert interpolation_problems("TOKEN: ${PREPICM_TOKEN}\nX: $HOME\nY: $${LITERAL}") == [
        "${PREPICM_TOKEN}: write ${VAR:?why} (required) or ${VAR:-default}",
        "$HOME: write ${VAR:?why} (required) or ${VAR:-default}",
    ]
    assert interpolation_problems("${A:?}") == ["${A:?}: write ${VAR:?why} (required) or ${VAR:-default}"]


def test_overrides_extend_existing_services(compose: dict[str, Any]) -> None:
    cpu = load_compose(DEPLOY / "compose" / "cpu.yml")
    dev = load_compose(REPO / "docker-compose.dev.yml")
    for override in (cpu, dev):
        assert set(override["services"]) <= set(compose["services"])
    devices = cpu["services"]["edge"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices == Tagged("reset", []), "the CPU override must drop the GPU reservation"
    assert "tensorrt" not in cpu["services"]["edge"]["build"]["args"]["EXTRAS"].split(",")
    assert env_of(dev["services"]["edge"])["PREPICM_EDGE_DEV"] == "true"
    assert compose["services"]["codec-bench"]["profiles"] == ["bench"]


def test_environment_names_are_real_settings(compose: dict[str, Any]) -> None:
    files = [compose, load_compose(DEPLOY / "compose" / "cpu.yml"), load_compose(REPO / "docker-compose.dev.yml")]
    k8s_env = [doc["data"] for doc in yaml.safe_load_all((K8S / "configmap.yaml").read_text())]
    assert settings_problems(files, k8s_env) == []
    typo = [{"PREPICM_EDGE_CLOUD_ULR": "http://cloud:8001", "PREPICM_BOGUS": "1"}]
    problems = settings_problems([], typo)
    assert any(p.startswith("PREPICM_EDGE_CLOUD_ULR: unknown setting") for p in problems)
    assert "PREPICM_BOGUS: not a setting of any service nor of shared.runtime" in problems


# ---- Dockerfiles ------------------------------------------------------------------------------


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comment lines dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = pending + line
        pending = ""
        word, _, rest = full.partition(" ")
        out.append((word.upper(), rest.strip()))
    assert not pending, "a line continuation runs past the end of the file"
    return out


def dockerignore_excludes(patterns: list[str], path: str) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern[1:] if negate else pattern
        if any(fnmatch.fnmatchcase(p, pat) for p in prefixes):
            excluded = not negate
    return excluded


def _arg_defaults(instructions: list[tuple[str, str]]) -> dict[str, str]:
    defaults = {}
    for word, rest in instructions:
        if word == "ARG" and "=" in rest:
            key, value = rest.split("=", 1)
            defaults[key.strip()] = value.strip().strip('"')
    return defaults


def named_contexts(dockerfile: Path, compose: dict[str, Any]) -> dict[str, Path]:
    contexts: dict[str, Path] = {}
    for svc in compose["services"].values():
        build = svc.get("build") or {}
        if (REPO / build.get("context", ".") / build.get("dockerfile", "Dockerfile")).resolve() == dockerfile:
            for name, path in (build.get("additional_contexts") or {}).items():
                contexts[name] = (REPO / path).resolve()
    return contexts


def dockerfile_problems(dockerfile: Path, text: str, compose: dict[str, Any]) -> list[str]:
    """Every COPY source exists and survives the .dockerignore; pip installs name real files and
    extras; the service images run as a non-root user with a healthcheck on /healthz."""
    problems: list[str] = []
    instructions = dockerfile_instructions(text)
    args = _arg_defaults(instructions)
    ignore_file = dockerfile.with_name(dockerfile.name + ".dockerignore")
    ignore = [ln.strip() for ln in ignore_file.read_text().splitlines()
              if ln.strip() and not ln.strip().startswith("#")] if ignore_file.is_file() else []
    if not ignore:
        problems.append(f"{ignore_file.name} missing: the whole checkout (.venv included) would be sent")
    stages = {m.group(1) for w, r in instructions if w == "FROM" and (m := re.search(r"\s+AS\s+(\S+)", r, re.I))}
    contexts = named_contexts(dockerfile.resolve(), compose)
    copied: list[str] = []
    for word, rest in instructions:
        if word not in ("COPY", "ADD"):
            continue
        tokens = shlex.split(rest)
        flags = dict(t[2:].split("=", 1) if "=" in t else (t[2:], "") for t in tokens if t.startswith("--"))
        sources = [t for t in tokens if not t.startswith("--")][:-1]
        origin = flags.get("from")
        if origin in stages:
            continue
        if origin is not None:
            root = contexts.get(origin)
            if root is None:
                problems.append(f"COPY --from={origin}: no such stage, nor an additional_context in compose")
            elif root.is_dir():  # outside the repository (../shared): checked where present
                problems += [f"COPY --from={origin} {s}: missing in {root}" for s in sources if not (root / s).exists()]
            continue
        for src in sources:
            if not (REPO / src).exists():
                problems.append(f"COPY {src}: missing in the repository")
            elif ignore and dockerignore_excludes(ignore, src.rstrip("/")):
                problems.append(f"COPY {src}: excluded by {ignore_file.name}")
            copied.append(src.rstrip("/"))
    for word, rest in instructions:
        if word != "RUN":
            continue
        for req in re.findall(r"-r\s+(\S+)", rest):
            if not (REPO / req).is_file():
                problems.append(f"RUN installs {req}, which does not exist")
            elif not any(req == c or req.startswith(c + "/") for c in copied):
                problems.append(f"RUN installs {req}, which no COPY brings into the image")
        for spec in re.findall(r"\.\[([^\]]+)\]", rest):
            spec = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), spec)
            for extra in spec.split(","):
                if extra not in extras():
                    problems.append(f"installs extra {extra!r}, which pyproject.toml does not define")
    role = dockerfile.name.removeprefix("Dockerfile.") if "." in dockerfile.name else None
    if role in SERVICES:
        port = SERVICES[role]
        words = dict(instructions)
        users = [r for w, r in instructions if w == "USER"]
        if not users or users[-1].split(":")[0] in ("root", "0"):
            problems.append("runs as root (no final USER)")
        if "/healthz" not in words.get("HEALTHCHECK", "") or "prepicm-healthcheck" not in words.get("HEALTHCHECK", ""):
            problems.append("HEALTHCHECK does not run prepicm-healthcheck on /healthz")
        if words.get("EXPOSE") != str(port):
            problems.append(f"EXPOSE is {words.get('EXPOSE')}, not {port}")
        if json.loads(words.get("CMD", "[]")) != ["python3", "-m", role]:
            problems.append(f"CMD is {words.get('CMD')}, not python3 -m {role}")
        env = " ".join(r for w, r in instructions if w == "ENV")
        for var in (f"PREPICM_{role.upper()}_HOST=0.0.0.0", f"PREPICM_{role.upper()}_PORT={port}",
                    "PREPICM_CACHE_DIR="):
            if var not in env:
                problems.append(f"ENV lacks {var}")
    return problems


def service_dockerfiles() -> list[Path]:
    return sorted(p for p in DEPLOY.glob("Dockerfile*") if not p.name.endswith(".dockerignore"))


def test_dockerfiles_are_buildable_from_the_repository(compose: dict[str, Any]) -> None:
    files = service_dockerfiles()
    assert {p.name for p in files} >= {"Dockerfile", "Dockerfile.edge", "Dockerfile.cloud"}
    for path in files:
        text = path.read_text()
        assert text.startswith(("#", "FROM", "ARG")), path.name
        assert dockerfile_problems(path, text, compose) == [], path.name


def test_dockerfile_check_catches_a_broken_copy(compose: dict[str, Any]) -> None:
    path = DEPLOY / "Dockerfile.cloud"
    text = path.read_text()
    broken = (text.replace("COPY cloud ./cloud", "COPY cloud ./cloud\nCOPY no_such_dir ./x\nCOPY .venv ./venv")
              .replace("ARG EXTRAS=cloud,tasks,codecs-extra", "ARG EXTRAS=cloud,gpu-magic")
              .replace("requirements/nodeps.txt", "requirements/missing.txt")
              .replace("USER prepicm", "USER root")
              .replace("/healthz", "/health"))
    problems = dockerfile_problems(path, broken, compose)
    assert "COPY no_such_dir: missing in the repository" in problems
    assert "COPY .venv: excluded by Dockerfile.cloud.dockerignore" in problems
    assert "installs extra 'gpu-magic', which pyproject.toml does not define" in problems
    assert "RUN installs requirements/missing.txt, which does not exist" in problems
    assert "runs as root (no final USER)" in problems
    assert "HEALTHCHECK does not run prepicm-healthcheck on /healthz" in problems


@pytest.mark.parametrize("role", sorted(SERVICES))
def test_image_command_runs_a_real_module(role: str) -> None:
    """CMD is `python3 -m <role>`: the package needs a __main__ (the service's own launcher)."""
    main = REPO / role / "__main__.py"
    assert main.is_file(), f"{role}/__main__.py missing: `python3 -m {role}` in Dockerfile.{role} would fail"
    assert "uvicorn" in main.read_text(), f"{role}/__main__.py does not start uvicorn"


def test_cloud_image_installs_the_nodeps_packages_and_the_tested_torch() -> None:
    instructions = dockerfile_instructions((DEPLOY / "Dockerfile.cloud").read_text())
    runs = " ".join(r for w, r in instructions if w == "RUN")
    assert "--no-deps -r requirements/nodeps.txt" in runs
    setup = (REPO / "scripts" / "setup.sh").read_text()
    pins = re.findall(r'"(torch(?:vision)?==[^"]+)"', setup)
    assert len(pins) == 2, pins
    assert _arg_defaults(instructions)["TORCH_SPEC"].split() == pins
    assert "TORCH_SPEC" in runs


def test_cloud_image_bakes_the_weights_where_shared_paths_looks(compose: dict[str, Any]) -> None:
    from shared.paths import shared_weights_dir
    from shared.runtime import runtime_settings
    from shared.tasks.yolov5n import YoloV5

    instructions = dockerfile_instructions((DEPLOY / "Dockerfile.cloud").read_text())
    env = dict(kv.split("=", 1) for w, r in instructions if w == "ENV" for kv in shlex.split(r))
    dest = next(shlex.split(r)[-1] for w, r in instructions if w == "COPY" and "--from=weights" in r)
    in_image = shared_weights_dir(runtime_settings({"PREPICM_SHARED_DIR": env["PREPICM_SHARED_DIR"]}))
    assert Path(dest.rstrip("/")) == in_image
    copied = [s for s in shlex.split(next(r for w, r in instructions if "--from=weights" in r))[1:-1]]
    spec = YoloV5.weights_spec
    assert spec is not None and spec.in_shared_dir and spec.filename in copied
    context = named_contexts((DEPLOY / "Dockerfile.cloud").resolve(), compose)["weights"]
    if not context.is_dir():
        pytest.skip(f"the weights build context {context} is not on this machine")
    assert (context / spec.filename).is_file()


def extra_distributions(names: str) -> set[str]:
    """Distribution names an install of ``.[names]`` pulls from pyproject (self-references followed)."""
    table = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    seen: set[str] = set()
    dists: set[str] = set()
    todo = [n for n in names.split(",") if n]
    while todo:
        extra = todo.pop()
        if extra in seen or extra not in table:
            continue
        seen.add(extra)
        for req in table[extra]:
            m = re.match(r"^\s*([A-Za-z0-9_.-]+)\s*(\[([^\]]+)\])?", req)
            assert m, req
            if m.group(1) == "prepicm":
                todo += m.group(3).split(",")
            else:
                dists.add(m.group(1).lower().replace("_", "-"))
    return dists


def test_image_extras_carry_what_the_services_import() -> None:
    """The import smoke test at the end of each image build, checked here against pyproject."""
    cloud_args = _arg_defaults(dockerfile_instructions((DEPLOY / "Dockerfile.cloud").read_text()))
    cloud = extra_distributions(cloud_args["EXTRAS"])
    # compose and the k8s Secret point DATABASE_URL at PostgreSQL through SQLAlchemy + psycopg 3
    assert {"fastapi", "uvicorn", "prometheus-client", "pydantic-settings", "sqlalchemy", "torch"} <= cloud, cloud
    assert any(d == "psycopg" or d.startswith("psycopg-") for d in cloud), "no psycopg (3) in the cloud extras"
    edge_args = _arg_defaults(dockerfile_instructions((DEPLOY / "Dockerfile.edge").read_text()))
    edge = extra_distributions(edge_args["EXTRAS"])
    assert {"fastapi", "uvicorn", "httpx", "prometheus-client", "pydantic-settings", "onnxruntime"} <= edge, edge
    assert "torch" not in edge, "the CPU edge image should not carry torch"
    assert extra_distributions("tensorrt") >= {"tensorrt", "cuda-python"}


def test_dockerignore_semantics() -> None:
    patterns = ["*", "!shared", "!deploy/healthcheck.py", "**/__pycache__"]
    assert not dockerignore_excludes(patterns, "shared")
    assert not dockerignore_excludes(patterns, "deploy/healthcheck.py")
    assert dockerignore_excludes(patterns, "deploy/k8s")
    assert dockerignore_excludes(patterns, "shared/codecs/__pycache__")
    assert dockerignore_excludes(patterns, ".venv")


# ---- Prometheus and Grafana ---------------------------------------------------------------------


def prometheus_problems(config: dict[str, Any], compose: dict[str, Any]) -> list[str]:
    problems = []
    targets = {}
    for job in config.get("scrape_configs") or []:
        for sc in job.get("static_configs") or []:
            for t in sc.get("targets") or []:
                targets[t] = job.get("metrics_path", "/metrics")
    for name, port in SERVICES.items():
        target = f"{name}:{port}"
        if targets.get(target) != "/metrics":
            problems.append(f"no scrape of {target}/metrics (targets: {targets})")
        if name not in compose["services"]:
            problems.append(f"scrape target {name} is not a compose service")
    return problems


def test_prometheus_scrapes_both_services(compose: dict[str, Any]) -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    assert prometheus_problems(config, compose) == []
    mounts = compose["services"]["prometheus"]["volumes"]
    assert "./deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in mounts
    broken = copy.deepcopy(config)
    broken["scrape_configs"][1]["static_configs"][0]["targets"] = ["cloud:9999"]
    problems = prometheus_problems(broken, compose)
    assert len(problems) == 1 and problems[0].startswith("no scrape of cloud:8001/metrics")


_PROMQL_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
                    "unless", "offset", "inf", "nan"}
_PROMQL_FUNCTIONS = {"rate", "irate", "increase", "sum", "avg", "min", "max", "count", "topk", "bottomk",
                     "histogram_quantile", "clamp_min", "clamp_max", "abs", "avg_over_time", "max_over_time",
                     "delta", "deriv", "label_values", "sum_over_time", "vector", "scalar", "time"}


def promql_series(expr: str) -> set[str]:
    """The series names an expression selects (Grafana variables, strings, label matchers,
    ranges and grouping clauses removed first)."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)
    e = re.sub(r"label_values\(([^,()]+),\s*\w+\)", r"label_values(\1)", e)  # Grafana: (series, label)
    e = re.sub(r"\$\{?\w+\}?", "", e)
    e = re.sub(r"\{[^}]*\}", "", e)
    e = re.sub(r"\[[^\]]*\]", "", e)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    names = set()
    for m in re.finditer(r"(?<![\w.])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?", e):
        word, call = m.group(1), m.group(2)
        if call:
            if word not in _PROMQL_FUNCTIONS:
                names.add(f"unknown function {word}()")
        elif word.lower() not in _PROMQL_KEYWORDS:
            names.add(word)
    return names


def allowed_series(metrics: dict[str, str]) -> dict[str, str]:
    """series name → the metric it belongs to (histograms expose _bucket, _sum and _count)."""
    series = {}
    for name, kind in metrics.items():
        if kind == "histogram":
            series |= {name + s: name for s in ("_bucket", "_sum", "_count")}
        else:
            series[name] = name
    return series


def dashboard_exprs(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    def walk(panels: list[dict[str, Any]]) -> Iterator[tuple[str, str]]:
        for p in panels:
            for t in p.get("targets") or []:
                yield p.get("title", "?"), t.get("expr", "")
            yield from walk(p.get("panels") or [])

    yield from walk(dashboard.get("panels") or [])
    for var in (dashboard.get("templating") or {}).get("list", []):
        query = var.get("query")
        yield f"variable {var.get('name')}", query.get("query", "") if isinstance(query, dict) else str(query)


def dashboard_problems(dashboard: dict[str, Any], metrics: dict[str, str]) -> list[str]:
    """Every query selects only known series; every contract metric is shown; ids and
    datasources are consistent."""
    problems = []
    series = allowed_series(metrics)
    used: set[str] = set()
    for title, expr in dashboard_exprs(dashboard):
        names = promql_series(expr)
        if not names:
            problems.append(f"{title}: query selects no series: {expr!r}")
        for n in sorted(names - set(series)):
            problems.append(f"{title}: {n} is not a published metric series")
        used |= {series[n] for n in names if n in series}
    problems += [f"metric {m} is on no panel" for m in sorted(set(CONTRACT_METRICS) - used)]
    ids = [p["id"] for p in dashboard.get("panels", [])]
    if len(ids) != len(set(ids)):
        problems.append("duplicate panel ids")
    for p in dashboard.get("panels", []):
        if p.get("type") != "row" and (p.get("datasource") or {}).get("uid") != "prometheus":
            problems.append(f"{p.get('title')}: datasource is not the provisioned uid 'prometheus'")
    return problems


def metric_definition_problems(metrics: dict[str, str]) -> list[str]:
    """Where edge/metrics.py or cloud/metrics.py exist, each metric is defined there with its type
    (prometheus_client adds `_total` to a counter's name, so either spelling is accepted)."""
    problems = []
    ctor = {"counter": "Counter", "histogram": "Histogram", "gauge": "Gauge"}
    for name, kind in metrics.items():
        service = name.split("_")[1]
        module = METRIC_MODULES[service]
        if not module.is_file():
            if name in EXTENSION_METRICS:
                problems.append(f"{name}: beyond the contract and {module.name} of {service} does not exist")
            continue
        base = name.removesuffix("_total") if kind == "counter" else name
        pattern = rf'{ctor[kind]}\(\s*["\']{re.escape(base)}(_total)?["\']'
        if not re.search(pattern, module.read_text()):
            problems.append(f"{name}: no {ctor[kind]}({base!r}, ...) in {module.relative_to(REPO)}")
    return problems


def test_dashboard_queries_use_only_published_metrics(dashboard: dict[str, Any]) -> None:
    assert dashboard_problems(dashboard, CONTRACT_METRICS | EXTENSION_METRICS) == []


def test_dashboard_metrics_are_defined_by_the_services() -> None:
    assert metric_definition_problems(CONTRACT_METRICS | EXTENSION_METRICS) == []


def test_dashboard_check_catches_a_broken_copy(dashboard: dict[str, Any]) -> None:
    broken = copy.deepcopy(dashboard)
    panel = next(p for p in broken["panels"] if p["type"] != "row")
    panel["targets"][0]["expr"] = 'sum(rate(prepicm_edge_made_up_total{camera=~"$camera"}[$__rate_interval]))'
    broken["panels"] = [p for p in broken["panels"]
                        if not any("prepicm_cloud_duplicates_total" in t["expr"] for t in p.get("targets", []))]
    problems = dashboard_problems(broken, CONTRACT_METRICS)
    assert f"{panel['title']}: prepicm_edge_made_up_total is not a published metric series" in problems
    assert "metric prepicm_cloud_duplicates_total is on no panel" in problems
    assert any("prepicm_edge_sampled_bits_total is not a published metric series" in p for p in problems)
    # a histogram's bare name is not a series; a misspelt module definition is caught too
    assert promql_series("histogram_quantile(0.99, sum by (le, stage) (rate(x_bucket[5m]))) / 1e3") == {"x_bucket"}
    assert promql_series("foo(bar)") == {"unknown function foo()", "bar"}
    assert metric_definition_problems({"prepicm_edge_no_such_metric_total": "counter"}) == (
        [] if not METRIC_MODULES["edge"].is_file()
        else ["prepicm_edge_no_such_metric_total: no Counter('prepicm_edge_no_such_metric', ...) in edge/metrics.py"])


def test_grafana_provisioning_matches_the_compose_mounts(compose: dict[str, Any], dashboard: dict[str, Any]) -> None:
    prov = DEPLOY / "grafana" / "provisioning"
    ds = yaml.safe_load((prov / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert [(d["uid"], d["url"]) for d in ds] == [("prometheus", "http://prometheus:9090")]
    provider = yaml.safe_load((prov / "dashboards" / "prepicm.yml").read_text())["providers"][0]
    mounts = dict(v.split(":")[:2] for v in compose["services"]["grafana"]["volumes"])
    assert mounts["./deploy/grafana/dashboards"] == provider["options"]["path"]
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    home = env_of(compose["services"]["grafana"])["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == provider["options"]["path"] + "/" + DASHBOARD.name
    assert dashboard["uid"] and dashboard["title"]


# ---- Kubernetes -------------------------------------------------------------------------------


def _ports(container: dict[str, Any]) -> dict[str | int, int]:
    ports: dict[str | int, int] = {}
    for p in container.get("ports") or []:
        ports[p["containerPort"]] = p["containerPort"]
        if "name" in p:
            ports[p["name"]] = p["containerPort"]
    return ports


def k8s_problems(docs: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """Shape of every object, probes of the Deployments, Services and the HPA pointing at them,
    and every referenced ConfigMap/Secret key defined."""
    problems = []
    by_kind: dict[str, dict[str, dict[str, Any]]] = {}
    for fname, d in docs:
        for key in ("apiVersion", "kind", "metadata"):
            if key not in d:
                problems.append(f"{fname}: an object without {key}")
        name = (d.get("metadata") or {}).get("name")
        if not name:
            problems.append(f"{fname}: a {d.get('kind')} without metadata.name")
        by_kind.setdefault(d.get("kind", "?"), {})[name] = d
    deployments = by_kind.get("Deployment", {})
    for role, port in SERVICES.items():
        dep = deployments.get(f"prepicm-{role}")
        if dep is None:
            problems.append(f"no Deployment prepicm-{role}")
            continue
        spec = dep["spec"]
        labels = spec["template"]["metadata"]["labels"]
        if any(labels.get(k) != v for k, v in spec["selector"]["matchLabels"].items()):
            problems.append(f"prepicm-{role}: selector does not match its pod labels")
        container = spec["template"]["spec"]["containers"][0]
        ports = _ports(container)
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            get = (container.get(probe) or {}).get("httpGet") or {}
            if get.get("path") != path or ports.get(get.get("port")) != port:
                problems.append(f"prepicm-{role}: {probe} is not GET {path} on port {port} ({get})")
        if not container.get("resources", {}).get("requests"):
            problems.append(f"prepicm-{role}: no resource requests")
        sc = spec["template"]["spec"].get("securityContext") or {}
        if not sc.get("runAsNonRoot"):
            problems.append(f"prepicm-{role}: pod may run as root")
        for env in container.get("env") or []:
            ref = (env.get("valueFrom") or {}).get("secretKeyRef")
            if ref:
                secret = by_kind.get("Secret", {}).get(ref["name"])
                if secret is None:
                    problems.append(f"prepicm-{role}: {env['name']} from unknown Secret {ref['name']}")
                elif ref["key"] not in (secret.get("stringData") or {}) | (secret.get("data") or {}):
                    problems.append(f"prepicm-{role}: {env['name']} from missing key {ref['key']}")
        for src in container.get("envFrom") or []:
            cm = (src.get("configMapRef") or {}).get("name")
            if cm and cm not in by_kind.get("ConfigMap", {}):
                problems.append(f"prepicm-{role}: envFrom unknown ConfigMap {cm}")
    for name, svc in by_kind.get("Service", {}).items():
        selector = svc["spec"].get("selector") or {}
        pods = [d for d in deployments.values() if selector
                and all(d["spec"]["template"]["metadata"]["labels"].get(k) == v for k, v in selector.items())]
        if len(pods) != 1:
            problems.append(f"Service {name} selects {len(pods)} Deployments")
            continue
        ports = _ports(pods[0]["spec"]["template"]["spec"]["containers"][0])
        for p in svc["spec"]["ports"]:
            if p.get("targetPort", p["port"]) not in ports:
                problems.append(f"Service {name}: targetPort {p.get('targetPort')} is no container port")
    hpas = by_kind.get("HorizontalPodAutoscaler", {})
    if not any(h["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "prepicm-cloud"}
               and any(m.get("resource", {}).get("name") == "cpu" for m in h["spec"].get("metrics", []))
               for h in hpas.values()):
        problems.append("no CPU HorizontalPodAutoscaler targets Deployment prepicm-cloud")
    if any("postgres" in name for kind in ("Deployment", "StatefulSet") for name in by_kind.get(kind, {})):
        problems.append("PostgreSQL is an external dependency: no postgres workload here")
    return problems


def test_k8s_manifests_are_consistent(manifests: list[tuple[str, dict[str, Any]]]) -> None:
    assert k8s_problems(manifests) == []
    kinds = {d["kind"] for _, d in manifests}
    assert kinds >= {"Namespace", "ConfigMap", "Secret", "Deployment", "Service", "HorizontalPodAutoscaler"}


def test_k8s_check_catches_a_broken_copy(manifests: list[tuple[str, dict[str, Any]]]) -> None:
    broken = copy.deepcopy(manifests)
    for _, d in broken:
        if d["kind"] == "Deployment" and d["metadata"]["name"] == "prepicm-cloud":
            d["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["path"] = "/healthz"
            d["spec"]["template"]["spec"]["containers"][0]["env"][0]["valueFrom"]["secretKeyRef"]["key"] = "nope"
        if d["kind"] == "Service" and d["metadata"]["name"] == "prepicm-edge":
            d["spec"]["selector"] = {"app.kubernetes.io/name": "prepicm-edg"}
        if d["kind"] == "HorizontalPodAutoscaler":
            d["spec"]["scaleTargetRef"]["name"] = "prepicm-edge"
    broken.append(("extra.yaml", {"kind": "ConfigMap", "metadata": {}}))
    problems = k8s_problems(broken)
    assert any(p.startswith("prepicm-cloud: readinessProbe is not GET /readyz") for p in problems)
    assert "prepicm-cloud: PREPICM_CLOUD_TOKEN from missing key nope" in problems
    assert "Service prepicm-edge selects 0 Deployments" in problems
    assert "no CPU HorizontalPodAutoscaler targets Deployment prepicm-cloud" in problems
    assert "extra.yaml: an object without apiVersion" in problems


def test_kustomization_lists_every_manifest() -> None:
    kust = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert sorted(kust["resources"]) == sorted(files)
    assert kust["namespace"] == "prepicm"
    secret = (K8S / "secret.yaml").read_text()
    assert "REPLACE-ME" in secret and all("REPLACE-ME" in v for v in yaml.safe_load(secret)["stringData"].values())


# ---- the container health probe (real HTTP on loopback) ----------------------------------------


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response({"/healthz": 200, "/readyz": 503}.get(self.path, 404))
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _probe(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(DEPLOY / "healthcheck.py"), *args],
                          capture_output=True, text=True, timeout=30, check=False)


def test_healthcheck_probe_exit_codes(server: str) -> None:
    assert _probe(f"{server}/healthz").returncode == 0
    ready = _probe(f"{server}/readyz")
    assert (ready.returncode, ready.stderr.strip()) == (1, f"unhealthy: {server}/readyz: HTTP 503")
    with socket_closed_port() as port:
        down = _probe(f"http://127.0.0.1:{port}/healthz", "2")
    assert down.returncode == 1 and down.stderr.startswith("unhealthy:") and down.stderr.count("\n") == 1
    assert _probe().returncode == 2
    assert _probe(f"{server}/healthz", "soon").returncode == 2


class socket_closed_port:
    """A loopback port nothing listens on (bound, then released)."""

    def __enter__(self) -> int:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    def __exit__(self, *exc: object) -> None:
        pass
