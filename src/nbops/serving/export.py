"""``nbops.export``: write a registered model version as a service folder that runs
on its own (``python serve.py``), optionally with a canary candidate.

Folder layout::

    service/
      serve.py            the service (a copy of nbops/serving/app.py, no nbops import)
      model.skops         the model file, checked against model.json at start-up
      model.json          the registry record + model_name, source_run, store, compiled
      model.npz           tree models as arrays (only when they reproduce the model)
      canary/             the candidate version (model.skops, model.json, model.npz)
      canary.json         the canary plan: version, steps, min_requests, limits
      reference.parquet   training data (+ prediction, target) for nbops.monitor: by
                          default the sample stored with the version (named in
                          model.json "reference"); CSV when pyarrow is missing
      requirements.txt  Dockerfile  README.md
      logs/               predictions.jsonl, feedback.jsonl, events.jsonl (at run time)
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from .._errors import NbopsError

APP_FILE = Path(__file__).with_name("app.py")
CANARY_KEYS = {"version", "stage", "alias", "steps", "min_requests", "max_error_rate",
               "max_p99_ms"}
CANARY_DEFAULTS = {"steps": [10, 50, 100], "min_requests": 200, "max_error_rate": 0.01,
                   "max_p99_ms": 200.0}


class ExportError(NbopsError):
    """A service folder cannot be written (bad canary plan, folder in the way...)."""


def export(name: str, version: Any = None, stage: Any = None, alias: str | None = None,
           path: str | os.PathLike = "service", canary: dict | None = None,
           reference: Any = None, reference_target: Any = None,
           overwrite: bool = False) -> dict[str, Any]:
    """Write model ``name`` (picked by ``version``, ``stage`` or ``alias``; default the
    latest version) as a service folder at ``path``.

    ``canary`` adds a candidate: ``{"version": 4, "steps": [10, 50, 100],
    "min_requests": 200, "max_error_rate": 0.01, "max_p99_ms": 200}``.
    ``reference`` is what :func:`nbops.monitor` compares live traffic with: by default
    the training sample stored with the version (``log_model(reference=)`` or a
    ``%%track`` cell); a DataFrame replaces it; ``False`` exports none.
    ``reference_target`` adds the true labels of the reference rows. Returns a dict:
    path, model_name, version, candidate_version, compiled, reference (what was
    written, or None), files. Raises RegistryError for an unknown model or version,
    ModelIntegrityError for a changed model file or training sample, ExportError for a
    bad canary plan or reference, or a non-empty folder without ``overwrite=True``."""
    from .. import registry
    from ..store import get_store

    store = get_store()
    rec = registry.get(name, version=version, stage=stage, alias=alias)
    plan = _canary_plan(canary, rec) if canary is not None else None
    ref_frame, ref_meta = _reference_for(store, rec, reference, reference_target)
    folder = Path(path).expanduser().resolve()
    _prepare_folder(folder, overwrite)

    model = _write_version(store, rec, folder, ref_frame)
    out = {"path": str(folder), "model_name": rec["name"], "version": rec["version"],
           "candidate_version": None, "compiled": (folder / "model.npz").is_file(),
           "reference": None}
    if plan is not None:
        cand = plan.pop("record")
        _write_version(store, cand, folder / "canary", ref_frame)
        plan["folder"] = "canary"
        (folder / "canary.json").write_text(json.dumps(plan, indent=1))
        out["candidate_version"] = cand["version"]
    if ref_frame is not None:
        ref_meta.update(_write_reference(folder, model, rec, ref_frame, reference_target))
        meta = json.loads((folder / "model.json").read_text())
        meta["reference"] = ref_meta
        (folder / "model.json").write_text(json.dumps(meta, indent=1, default=str))
        out["reference"] = ref_meta
    shutil.copyfile(APP_FILE, folder / "serve.py")
    (folder / "requirements.txt").write_text(_requirements(rec))
    (folder / "Dockerfile").write_text(_dockerfile(rec))
    (folder / "README.md").write_text(_readme(rec, out["candidate_version"]))
    out["files"] = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    return out


def _canary_plan(canary: Any, rec: dict[str, Any]) -> dict[str, Any]:
    from .. import registry

    if not isinstance(canary, dict):
        raise ExportError("canary must be a dict such as {'version': 4, 'steps': [10, 50, "
                          "100]}")
    unknown = sorted(set(canary) - CANARY_KEYS)
    if unknown:
        raise ExportError(f"unknown canary keys {unknown}; use {sorted(CANARY_KEYS)}")
    picks = {k: canary.get(k) for k in ("version", "stage", "alias") if canary.get(k) is not None}
    if len(picks) != 1:
        raise ExportError("canary needs exactly one of 'version', 'stage' or 'alias' to pick "
                          "the candidate, e.g. canary={'version': 4}")
    cand = registry.get(rec["name"], **picks)
    if cand["version"] == rec["version"]:
        raise ExportError(f"the canary candidate is version {cand['version']}, the version "
                          "being exported; pick a different version for the candidate")
    plan = {**CANARY_DEFAULTS, **{k: v for k, v in canary.items() if k not in picks}}
    steps = plan["steps"]
    if (not isinstance(steps, list) or not steps
            or not all(isinstance(s, int | float) and 0 < s <= 100 for s in steps)
            or steps != sorted(steps) or len(set(steps)) != len(steps)):
        raise ExportError(f"canary steps {steps!r} must be rising percentages in (0, 100], "
                          "e.g. [10, 50, 100]")
    if steps[-1] != 100:
        plan["steps"] = [*steps, 100]
    if not isinstance(plan["min_requests"], int) or plan["min_requests"] < 1:
        raise ExportError(f"canary min_requests must be a positive int, got "
                          f"{plan['min_requests']!r}")
    rate = plan["max_error_rate"]
    if not isinstance(rate, int | float) or not 0 <= rate <= 1:
        raise ExportError(f"canary max_error_rate must be in [0, 1], got {rate!r}")
    p99 = plan["max_p99_ms"]
    if not isinstance(p99, int | float) or p99 <= 0:
        raise ExportError(f"canary max_p99_ms must be a positive number, got {p99!r}")
    plan["version"] = cand["version"]
    plan["record"] = cand
    return plan


def _prepare_folder(folder: Path, overwrite: bool) -> None:
    if folder.exists() and not folder.is_dir():
        raise ExportError(f"{folder} is a file; pass path= a folder to export into")
    if folder.is_dir() and any(folder.iterdir()):
        if not overwrite:
            raise ExportError(f"{folder} is not empty; pass overwrite=True to replace the "
                              "export there (its logs/ are kept), or choose another path")
        if not (folder / "model.json").is_file():
            raise ExportError(f"{folder} holds files that are not an nbops export; refusing "
                              "to overwrite them. Choose another path")
        for stale in ("canary", "canary.json", "canary_state.json", "model.npz",
                      "reference.parquet", "reference.csv"):
            p = folder / stale
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()
    folder.mkdir(parents=True, exist_ok=True)


def _write_version(store: Any, rec: dict[str, Any], folder: Path, reference: Any) -> Any:
    """model.skops + model.json (+ model.npz) of one version; returns the loaded model."""
    from ..modelfile import load_model_file
    from .compiled import compile_model

    src = store.artifacts.path(rec["sha256"])
    model = load_model_file(src, rec["sha256"], rec.get("trusted_types") or [])
    folder.mkdir(parents=True, exist_ok=True)
    file_name = rec.get("file_name") or "model.skops"
    shutil.copyfile(src, folder / file_name)
    meta = dict(rec)
    # the store's note on the training sample; export() names the folder's own file
    meta.pop("reference", None)
    meta.update({"model_name": rec["name"], "source_run": rec.get("run_id"),
                 "file_name": file_name, "store": str(store.root)})
    ref = _numeric_reference(reference, rec)
    if compile_model(model, folder / "model.npz", ref):
        from ..modelfile import sha256_bytes

        meta["compiled"] = {"file": "model.npz",
                            "sha256": sha256_bytes((folder / "model.npz").read_bytes())}
    (folder / "model.json").write_text(json.dumps(meta, indent=1, default=str))
    return model


def _numeric_reference(reference: Any, rec: dict[str, Any]) -> Any:
    if reference is None:
        return None
    cols = [i["name"] for i in (rec.get("signature") or {}).get("inputs") or []]
    try:
        return reference[cols].to_numpy(dtype=float)
    except Exception:  # noqa: BLE001 - non-numeric or other columns: probe without it
        return None


def _reference_for(store: Any, rec: dict[str, Any], reference: Any,
                   target: Any) -> tuple[Any, dict[str, Any] | None]:
    """(DataFrame, what model.json says about it) of the reference to export, or
    (None, None): the given DataFrame, else the version's stored training sample."""
    if reference is False:
        if target is not None:
            raise ExportError("reference_target was given with reference=False; drop one")
        return None, None
    if reference is not None:
        return reference, {"source": "export(reference=)"}
    stored = rec.get("reference")
    if not stored:
        if target is not None:
            raise ExportError(
                f"reference_target was given but version {rec['version']} of {rec['name']!r} "
                "has no stored training sample to label; pass reference=X_train as well")
        return None, None
    from ..registry import read_reference_file

    frame = read_reference_file(store.artifacts.verify(stored["sha256"]), stored["format"])
    if target is not None and (stored.get("sampled") or len(list(target)) != len(frame)):
        raise ExportError(
            f"reference_target has {len(list(target))} values, but the training sample of "
            f"version {rec['version']} keeps {len(frame)} of {stored.get('total_rows')} rows; "
            "pass the matching rows as reference= together with reference_target=")
    return frame, {"source": "training sample", "run_id": rec.get("run_id"),
                   "total_rows": stored.get("total_rows"), "sampled": stored.get("sampled"),
                   "sample_sha256": stored["sha256"]}


def _write_reference(folder: Path, model: Any, rec: dict[str, Any], reference: Any,
                     target: Any) -> dict[str, Any]:
    """Write the reference with the model's ``prediction`` (and ``target``); returns
    file, format, rows, sha256 and columns for model.json."""
    import pandas as pd

    from ..modelfile import sha256_bytes

    if not isinstance(reference, pd.DataFrame):
        raise ExportError("reference must be the training DataFrame (with the model's input "
                          "columns)")
    cols = [i["name"] for i in (rec.get("signature") or {}).get("inputs") or []]
    missing = [c for c in cols if c not in reference.columns]
    if missing:
        raise ExportError(f"the reference DataFrame lacks the model's columns {missing}")
    frame = reference[cols].copy()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame["prediction"] = model.predict(reference[cols])
    if target is not None:
        values = list(target)
        if len(values) != len(frame):
            raise ExportError(f"reference_target has {len(values)} values for "
                              f"{len(frame)} reference rows")
        frame["target"] = values
    try:
        frame.to_parquet(folder / "reference.parquet", index=False)
        name, fmt = "reference.parquet", "parquet"
    except ImportError:  # no pyarrow: CSV, which monitor reads as well
        frame.to_csv(folder / "reference.csv", index=False)
        name, fmt = "reference.csv", "csv"
    return {"file": name, "format": fmt, "rows": len(frame),
            "sha256": sha256_bytes((folder / name).read_bytes()),
            "columns": [str(c) for c in frame.columns]}


def _version_of(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _requirements(rec: dict[str, Any]) -> str:
    libs = rec.get("library_versions") or {}
    lines = ["# the versions the model was trained with (model.json library_versions)"]
    for key, dist in (("numpy", "numpy"), ("sklearn", "scikit-learn"), ("skops", "skops"),
                      ("pandas", "pandas")):
        v = libs.get(key) or _version_of(dist)
        lines.append(f"{dist}=={v}" if v else dist)
    lines.append("# the HTTP service")
    for dist, floor in (("fastapi", "0.110"), ("uvicorn", "0.27"), ("orjson", "3.9"),
                        ("httptools", "0.6"), ("pyarrow", "14")):
        lines.append(f"{dist}>={floor}")
    lines.append('uvloop>=0.19; sys_platform != "win32"')
    return "\n".join(lines) + "\n"


def _dockerfile(rec: dict[str, Any]) -> str:
    py = (rec.get("library_versions") or {}).get("python") or f"{sys.version_info[0]}.{sys.version_info[1]}"
    minor = ".".join(str(py).split(".")[:2])
    return (f"FROM python:{minor}-slim\n"
            "WORKDIR /service\n"
            "COPY requirements.txt .\n"
            "RUN pip install --no-cache-dir -r requirements.txt\n"
            "COPY . .\n"
            "EXPOSE 8000\n"
            "# inside a container the service must listen on all interfaces\n"
            'CMD ["python", "serve.py", "--host", "0.0.0.0", "--port", "8000"]\n')


def _sample_row(rec: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for i in (rec.get("signature") or {}).get("inputs") or []:
        d = str(i.get("dtype"))
        row[i["name"]] = "a" if d in ("str", "object", "string", "category") else (
            True if d.startswith("bool") else 0.0 if d.startswith("float") else 0)
    return row


def sample_request(rec: dict[str, Any]) -> dict[str, Any]:
    """A one-row ``dataframe_split`` body for the version's signature."""
    row = _sample_row(rec)
    return {"dataframe_split": {"columns": list(row), "data": [list(row.values())]}}


def _readme(rec: dict[str, Any], candidate: Any) -> str:
    body = json.dumps(sample_request(rec))
    name = rec["name"]
    canary = (f"\nA canary candidate (version {candidate}) is included; `GET /canary` shows "
              "its share and history.\n") if candidate is not None else ""
    return f"""# {name} version {rec['version']} (exported by nbops)

Run it:

    pip install -r requirements.txt
    python serve.py --port 8000            # http://127.0.0.1:8000, add --token T for auth
    python serve.py predict --input in.csv --output out.csv
{canary}
Score (MLflow scoring protocol):

    curl -s http://127.0.0.1:8000/invocations -H 'Content-Type: application/json' \\
      -d '{body}'

Open Inference Protocol v2: `POST /v2/models/{name}/infer`; health: `/ping`,
`/v2/health/ready`; Prometheus metrics: `/metrics`; ground truth: `POST /feedback`
with `{{"ids": ["<x-request-id>-0"], "labels": [1]}}`.

Every scored row is appended to `logs/predictions.jsonl`; `nbops.monitor("path/to/this/folder")`
reads it into a drift report. Docker: `docker build -t {name} . && docker run -p 8000:8000 {name}`.
"""

