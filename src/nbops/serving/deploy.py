"""The deployment files of a service folder: requirements, a hardened Dockerfile with
its ``.dockerignore``, a README, and the manifests for KServe (``kserve.yaml``) and
plain Kubernetes (``k8s.yaml``).

The image: ``python:<minor>-slim``, the requirements installed as root, then the
folder copied in (``.dockerignore`` keeps ``logs/``, caches and virtual environments
out), owned by root and read-only to the service, which runs as the unprivileged user
10001 and may write only ``logs/``. It listens on ``$PORT`` (8080 unless the platform
sets it) on all interfaces; ``HEALTHCHECK`` polls the OIP readiness path. Nothing in
these files names a path of the exporting machine.

``kserve.yaml`` is a ``serving.kserve.io/v1beta1`` InferenceService whose predictor is
the image as a custom container (port 8080, probes on ``/v2/health/ready`` and
``/v2/health/live``, resource requests and limits, non-root security context). KServe
has no ``protocolVersion`` field for custom containers, so the annotation
``nbops.io/protocol: v2`` states it. ``canary_percent`` sets
``canaryTrafficPercent``: applied over a running InferenceService, KServe routes that
share to the new revision and the rest to the last ready one, as nbops' own canary
does inside one service. ``k8s.yaml`` holds a Deployment and a ClusterIP Service
with the same container and probes.
"""

from __future__ import annotations

import json
import re
import sys
from importlib import metadata
from typing import Any

PORT = 8080
USER_ID = 10001
RESOURCES = {
    "requests": {"cpu": "250m", "memory": "256Mi"},
    "limits": {"cpu": "1", "memory": "1Gi"},
}
DOCKERIGNORE = """# kept out of the image: run-time output, caches, local environments
logs/
**/__pycache__/
**/*.pyc
.git/
.venv*/
.ipynb_checkpoints/
*.tmp
*.tmp.npz
canary_state.json
"""


def k8s_name(model: str, version: Any) -> str:
    """A DNS-1035 label for the model version: lower case, digits and '-', at most 45
    characters (KServe adds suffixes), starting with a letter."""
    base = re.sub(r"[^a-z0-9-]+", "-", str(model).lower()).strip("-") or "model"
    if not base[0].isalpha():
        base = "m-" + base
    return f"{base[:40].rstrip('-')}-v{version}"


def _version_of(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def requirements(rec: dict[str, Any], needs_sklearn: bool = True) -> str:
    """requirements.txt: the model's library versions, then the HTTP service's."""
    libs = rec.get("library_versions") or {}
    lines = ["# the versions the model was trained with (model.json library_versions)"]
    for key, dist in (
        ("numpy", "numpy"),
        ("sklearn", "scikit-learn"),
        ("skops", "skops"),
        ("pandas", "pandas"),
    ):
        v = libs.get(key) or _version_of(dist)
        lines.append(f"{dist}=={v}" if v else dist)
    lines.append("# the HTTP service")
    for dist, floor in (
        ("starlette", "0.37"),
        ("uvicorn", "0.27"),
        ("orjson", "3.9"),
        ("httptools", "0.6"),
        ("pyarrow", "14"),
    ):
        lines.append(f"{dist}>={floor}")
    lines.append('uvloop>=0.19; sys_platform != "win32"')
    return "\n".join(lines) + "\n"


def dockerfile(rec: dict[str, Any]) -> str:
    """The hardened Dockerfile (see the module docstring)."""
    py = (rec.get("library_versions") or {}).get(
        "python"
    ) or f"{sys.version_info[0]}.{sys.version_info[1]}"
    minor = ".".join(str(py).split(".")[:2])
    probe = (
        "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s"
        "/v2/health/ready' % os.environ.get('PORT', '8080'), timeout=2)"
    )
    return (
        f"FROM python:{minor}-slim\n"
        "ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \\\n"
        f"    PORT={PORT} NBOPS_HOST=0.0.0.0\n"
        "WORKDIR /service\n"
        "COPY requirements.txt .\n"
        "RUN pip install --no-cache-dir -r requirements.txt \\\n"
        f" && useradd --system --uid {USER_ID} --no-create-home --shell /usr/sbin/nologin"
        " nbops\n"
        "# the model and code stay root-owned and read-only; the service writes logs/ only\n"
        "COPY . .\n"
        "# bytecode at build time: containers start without compiling the service\n"
        f"RUN python -m compileall -q runtime && mkdir -p logs && chown {USER_ID}:{USER_ID} logs\n"
        f"USER {USER_ID}\n"
        f"EXPOSE {PORT}\n"
        "HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \\\n"
        f'  CMD python -c "{probe}" || exit 1\n'
        "# the port comes from $PORT (platforms set it), the host from $NBOPS_HOST\n"
        'CMD ["python", "serve.py"]\n'
    )


def _container(image: str) -> dict[str, Any]:
    def probe(path: str, delay: int) -> dict[str, Any]:
        return {
            "httpGet": {"path": path, "port": PORT},
            "initialDelaySeconds": delay,
            "periodSeconds": 10,
            "timeoutSeconds": 3,
            "failureThreshold": 3,
        }

    return {
        "name": "kserve-container",
        "image": image,
        "ports": [{"containerPort": PORT, "name": "http1", "protocol": "TCP"}],
        "env": [{"name": "PORT", "value": str(PORT)}, {"name": "NBOPS_HOST", "value": "0.0.0.0"}],
        "readinessProbe": probe("/v2/health/ready", 2),
        "livenessProbe": probe("/v2/health/live", 10),
        "resources": json.loads(json.dumps(RESOURCES)),
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": USER_ID,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": "logs", "mountPath": "/service/logs"}],
    }


def _labels(rec: dict[str, Any]) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": k8s_name(rec["name"], rec["version"]),
        "app.kubernetes.io/managed-by": "nbops",
        "nbops.io/model": re.sub(r"[^A-Za-z0-9_.-]+", "-", str(rec["name"]))[:63],
        "nbops.io/version": str(rec["version"]),
    }


def kserve_manifest(
    rec: dict[str, Any], image: str, canary_percent: int | None = None
) -> dict[str, Any]:
    """The InferenceService of a model version run from ``image``."""
    predictor: dict[str, Any] = {
        "minReplicas": 1,
        "containers": [_container(image)],
        "volumes": [{"name": "logs", "emptyDir": {}}],
    }
    if canary_percent is not None:
        predictor["canaryTrafficPercent"] = int(canary_percent)
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": k8s_name(rec["name"], rec["version"]).rsplit("-v", 1)[0],
            "labels": _labels(rec),
            "annotations": {
                "nbops.io/protocol": "v2",
                "nbops.io/model-sha256": str(rec.get("sha256")),
            },
        },
        "spec": {"predictor": predictor},
    }


def k8s_manifests(rec: dict[str, Any], image: str, replicas: int = 1) -> list[dict[str, Any]]:
    """A Deployment and a Service of a model version run from ``image``."""
    name = k8s_name(rec["name"], rec["version"])
    labels = _labels(rec)
    selector = {"app.kubernetes.io/name": name}
    container = _container(image)
    container["name"] = "model"
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": USER_ID,
                        "fsGroup": USER_ID,
                    },
                    "containers": [container],
                    "volumes": [{"name": "logs", "emptyDir": {}}],
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "type": "ClusterIP",
            "selector": selector,
            "ports": [{"name": "http", "port": 80, "targetPort": PORT, "protocol": "TCP"}],
        },
    }
    return [deployment, service]


def to_yaml(docs: list[dict[str, Any]]) -> str:
    """YAML text of several documents (``---`` between them)."""
    import yaml

    return "---\n".join(yaml.safe_dump(d, sort_keys=False) for d in docs)


def sample_request(rec: dict[str, Any]) -> dict[str, Any]:
    """A one-row ``dataframe_split`` body for the version's signature."""
    row: dict[str, Any] = {}
    for i in (rec.get("signature") or {}).get("inputs") or []:
        d = str(i.get("dtype"))
        row[i["name"]] = (
            "a"
            if d in ("str", "object", "string", "category")
            else (True if d.startswith("bool") else 0.0 if d.startswith("float") else 0)
        )
    return {"dataframe_split": {"columns": list(row), "data": [list(row.values())]}}


def readme(rec: dict[str, Any], candidate: Any, image: str) -> str:
    """README.md of the service folder."""
    body = json.dumps(sample_request(rec))
    name = rec["name"]
    canary = (
        (
            f"\nA canary candidate (version {candidate}) is included; `GET /canary` shows "
            "its share and history.\n"
        )
        if candidate is not None
        else ""
    )
    return f"""# {name} version {rec["version"]} (exported by nbops)

Run it:

    pip install -r requirements.txt
    python serve.py --port 8000            # http://127.0.0.1:8000, add --token T for auth
    python serve.py --port 8000 --workers 2 --access-log
    python serve.py predict --input in.csv --output out.csv
{canary}
Score (MLflow scoring protocol: JSON, CSV or Parquet bodies):

    curl -s http://127.0.0.1:8000/invocations -H 'Content-Type: application/json' \\
      -d '{body}'

Open Inference Protocol v2 (JSON and the binary tensor extension):
`POST /v2/models/{name}/infer` or `/v2/models/{name}/versions/{rec["version"]}/infer`;
health: `/ping`, `/v2/health/ready`; Prometheus metrics: `/metrics`; ground truth:
`POST /feedback` with `{{"ids": ["<x-request-id>-0"], "labels": [1]}}`.

Every scored row is appended to `logs/predictions.jsonl`; `nbops.monitor("path/to/this/folder")`
reads it into a drift report.

Container: `docker build -t {image} . && docker run -p 8080:8080 {image}` (non-root,
listens on `$PORT`, default 8080). Kubernetes: push the image, then
`kubectl apply -f kserve.yaml` (KServe) or `kubectl apply -f k8s.yaml` (plain Kubernetes).
"""
