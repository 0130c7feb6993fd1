"""What a platform team deploys: kserve.yaml and k8s.yaml validated field by field
against the KServe SDK's and the Kubernetes client's models, and the hardened
Dockerfile (checked statically here; built and run where a container engine exists)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

import nbops
from tests.conftest import needs

IMAGE = "registry.example.com/team/wine:1"


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    from sklearn.datasets import load_wine
    from sklearn.tree import DecisionTreeClassifier

    root = tmp_path_factory.mktemp("manifests")
    old = os.environ.get("NBOPS_STORE")
    os.environ["NBOPS_STORE"] = str(root / "store")
    nbops.set_store(None)
    X, y = load_wine(return_X_y=True, as_frame=True)
    with nbops.start_run(name="wine") as run:
        nbops.log_model(DecisionTreeClassifier(max_depth=3).fit(X, y), signature=X, reference=X)
    nbops.register(run.run_id, "Wine_Quality")
    info = nbops.export(
        "Wine_Quality", version=1, path=root / "svc", image=IMAGE, canary_percent=20
    )
    (Path(info["path"]) / "logs").mkdir(exist_ok=True)
    (Path(info["path"]) / "logs" / "predictions.jsonl").write_text("{}\n")
    yield {"info": info, "path": Path(info["path"]), "root": root}
    nbops.set_store(None)
    if old is None:
        os.environ.pop("NBOPS_STORE", None)
    else:
        os.environ["NBOPS_STORE"] = old


def build(klass, data, where="spec"):
    """An SDK model from manifest data, refusing keys the model does not have."""
    import kubernetes.client.models as k8s

    try:
        import kserve.models as ks
    except ImportError:  # pragma: no cover - `make test` installs it
        ks = None
    if isinstance(klass, str):
        m = re.fullmatch(r"(?:list|List)\[(.+)\]", klass)
        if m:
            assert isinstance(data, list), where
            return [build(m.group(1), v, f"{where}[{i}]") for i, v in enumerate(data)]
        m = re.fullmatch(r"(?:dict\((\w+), (.+)\)|Dict\[(\w+), (.+)\])", klass)
        if m:
            assert isinstance(data, dict), where
            inner = m.group(2) or m.group(4)
            return {k: build(inner, v, f"{where}.{k}") for k, v in data.items()}
        if klass in ("str", "int", "bool", "float", "object", "datetime"):
            if klass == "str":
                assert isinstance(data, str), f"{where} must be a string, got {data!r}"
            if klass == "int":
                assert isinstance(data, int) and not isinstance(data, bool), where
            if klass == "bool":
                assert isinstance(data, bool), where
            return data
        klass = getattr(ks, klass, None) if ks and hasattr(ks, klass) else getattr(k8s, klass)
    assert isinstance(data, dict), f"{where} must be a mapping"
    by_key = {v: k for k, v in klass.attribute_map.items()}
    unknown = sorted(set(data) - set(by_key))
    assert not unknown, f"{where}: {klass.__name__} has no fields {unknown}"
    kwargs = {
        by_key[k]: build(klass.openapi_types[by_key[k]], v, f"{where}.{k}") for k, v in data.items()
    }
    return klass(**kwargs)


def _docs(path):
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def test_kserve_manifest_is_a_valid_inference_service(export):
    needs(_has_kserve(), "the kserve SDK is not installed (make test installs it)")
    (doc,) = _docs(export["path"] / "kserve.yaml")
    isvc = build("V1beta1InferenceService", doc)
    assert isvc.api_version == "serving.kserve.io/v1beta1" and isvc.kind == "InferenceService"
    assert re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", isvc.metadata.name)
    predictor = isvc.spec.predictor
    assert predictor.canary_traffic_percent == 20
    (container,) = predictor.containers
    assert container.image == IMAGE
    assert [p.container_port for p in container.ports] == [8080]
    assert container.readiness_probe.http_get.path == "/v2/health/ready"
    assert container.liveness_probe.http_get.path == "/v2/health/live"
    assert container.readiness_probe.http_get.port == 8080
    assert container.resources.requests["cpu"] and container.resources.requests["memory"]
    assert container.security_context.run_as_non_root is True
    assert isvc.metadata.annotations["nbops.io/protocol"] == "v2"


def test_k8s_manifest_is_a_deployment_and_a_service(export):
    deployment, service = _docs(export["path"] / "k8s.yaml")
    dep = build("V1Deployment", deployment)
    svc = build("V1Service", service)
    (container,) = dep.spec.template.spec.containers
    assert container.image == IMAGE
    assert container.readiness_probe.http_get.path == "/v2/health/ready"
    assert container.liveness_probe.http_get.path == "/v2/health/live"
    assert dep.spec.selector.match_labels.items() <= dep.spec.template.metadata.labels.items()
    assert svc.spec.selector == dep.spec.selector.match_labels
    assert svc.spec.ports[0].target_port == container.ports[0].container_port == 8080
    assert dep.spec.template.spec.security_context.run_as_non_root is True


def test_export_without_canary_percent_leaves_kserve_traffic_alone(export, tmp_path):
    info = nbops.export("Wine_Quality", version=1, path=tmp_path / "plain")
    (doc,) = _docs(Path(info["path"]) / "kserve.yaml")
    assert "canaryTrafficPercent" not in doc["spec"]["predictor"]
    assert doc["spec"]["predictor"]["containers"][0]["image"] == "wine-quality:1"


@pytest.mark.parametrize("bad", [0, 100, 150, "20", True])
def test_bad_canary_percent_is_refused(export, tmp_path, bad):
    with pytest.raises(nbops.ExportError, match="canary_percent"):
        nbops.export("Wine_Quality", version=1, path=tmp_path / "x", canary_percent=bad)


def test_cli_export_takes_image_and_canary_percent(export, tmp_path):
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "nbops.cli",
            "--store",
            str(export["root"] / "store"),
            "export",
            "Wine_Quality",
            "--version",
            "1",
            "--path",
            str(tmp_path / "cli"),
            "--image",
            "r.example/w:7",
            "--canary-percent",
            "5",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    (doc,) = _docs(tmp_path / "cli" / "kserve.yaml")
    assert doc["spec"]["predictor"]["canaryTrafficPercent"] == 5
    assert doc["spec"]["predictor"]["containers"][0]["image"] == "r.example/w:7"


# -- the image ------------------------------------------------------------------------------
def test_dockerfile_is_hardened(export):
    text = (export["path"] / "Dockerfile").read_text()
    lines = [line.strip() for line in text.splitlines()]
    user = [line for line in lines if line.startswith("USER ")]
    assert user and user[-1].split()[1] not in ("root", "0")
    assert lines.index(user[-1]) > max(
        i for i, line in enumerate(lines) if line.startswith(("RUN", "COPY"))
    )
    health = next(i for i, line in enumerate(lines) if line.startswith("HEALTHCHECK"))
    assert "/v2/health/ready" in lines[health] + lines[health + 1]
    assert "PORT" in lines[health] + lines[health + 1]
    cmd = [line for line in lines if line.startswith("CMD ")][-1]
    assert "serve.py" in cmd and "--port" not in cmd  # the port comes from $PORT
    assert re.search(r"\bPORT=8080\b", text) and "EXPOSE 8080" in lines
    assert "--no-cache-dir" in text


def test_dockerignore_keeps_logs_and_caches_out(export):
    ignored = (export["path"] / ".dockerignore").read_text().splitlines()
    for pattern in ("logs/", "**/__pycache__/", ".venv*/"):
        assert pattern in ignored
    assert (export["path"] / "logs" / "predictions.jsonl").is_file()


def test_no_exported_file_names_a_path_of_the_exporting_machine(export):
    machine = {
        str(export["root"]),
        str(Path.home()),
        str(Path(nbops.__file__).parents[2]),
        os.environ["NBOPS_STORE"],
    }
    for path in export["path"].rglob("*"):
        if not path.is_file() or "logs" in path.parts:
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            text = path.read_bytes().decode("latin-1")
        for where in machine:
            assert where not in text, f"{path.name} names {where}"
    import json

    assert "store" not in json.loads((export["path"] / "model.json").read_text())


def test_image_builds_runs_and_turns_healthy(export):
    docker = shutil.which("docker") or shutil.which("podman")
    if docker is None or subprocess.run([docker, "info"], capture_output=True).returncode:
        pytest.skip(
            "no container engine on this machine: the Dockerfile, .dockerignore and "
            "manifests are checked statically by the other tests of this module"
        )
    tag = "nbops-test-wine:1"
    subprocess.run([docker, "build", "-t", tag, str(export["path"])], check=True, timeout=900)
    cid = subprocess.run(
        [docker, "run", "-d", "-P", tag], check=True, capture_output=True, text=True
    ).stdout.strip()
    try:
        deadline = time.monotonic() + 120
        while True:
            state = subprocess.run(
                [docker, "inspect", "-f", "{{.State.Health.Status}}", cid],
                capture_output=True,
                text=True,
            ).stdout.strip()
            if state == "healthy":
                break
            assert time.monotonic() < deadline, state
            time.sleep(2)
        user = subprocess.run(
            [docker, "exec", cid, "id", "-u"], capture_output=True, text=True
        ).stdout.strip()
        assert user != "0"
        files = subprocess.run(
            [docker, "exec", cid, "ls", "/service/logs"], capture_output=True, text=True
        ).stdout
        assert "predictions.jsonl" not in files  # logs/ stayed out of the image
    finally:
        subprocess.run([docker, "rm", "-f", cid], capture_output=True)


def _has_kserve() -> bool:
    try:
        import kserve.models  # noqa: F401
    except ImportError:
        return False
    return True
