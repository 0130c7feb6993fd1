"""``nbops.export``: write a registered model version as a service folder that runs
on its own (``python serve.py``), optionally with a canary candidate.

Folder layout::

    service/
      serve.py            the entry point (``python serve.py --port N``; PORT env works)
      runtime/            the service: a copy of nbops/serving/runtime, no nbops import
      model.skops         the model file, checked against model.json at start-up
      model.json          the registry record + model_name, source_run, compiled (no
                          path of the exporting machine)
      model.npz           the model as a numpy program (only when it reproduces the
                          model exactly): trees, boosting, linear models, pipelines
      canary/             the candidate version (model.skops, model.json, model.npz)
      canary.json         the canary plan: version, steps, min_requests, limits
      reference.parquet   training data (+ prediction, target) for nbops.monitor: by
                          default the sample stored with the version (named in
                          model.json "reference"); CSV when pyarrow is missing
      requirements.txt  Dockerfile  .dockerignore  README.md
      kserve.yaml         a KServe InferenceService running the image (port 8080)
      k8s.yaml            a Deployment and a Service for clusters without KServe
      logs/               predictions.jsonl, feedback.jsonl, events.jsonl (at run time)
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from .._errors import ExportError
from . import deploy
from .deploy import sample_request

__all__ = ["ExportError", "export", "sample_request"]

RUNTIME_DIR = Path(__file__).with_name("runtime")
ENTRY_FILE = Path(__file__).with_name("serve_entry.py")
CANARY_KEYS = {"version", "stage", "alias", "steps", "min_requests", "max_error_rate", "max_p99_ms"}
CANARY_DEFAULTS = {
    "steps": [10, 50, 100],
    "min_requests": 200,
    "max_error_rate": 0.01,
    "max_p99_ms": 200.0,
}


def export(
    name: str,
    version: Any = None,
    stage: Any = None,
    alias: str | None = None,
    path: str | os.PathLike = "service",
    canary: dict | None = None,
    reference: Any = None,
    reference_target: Any = None,
    overwrite: bool = False,
    image: str | None = None,
    canary_percent: int | None = None,
) -> dict[str, Any]:
    """Write model ``name`` (picked by ``version``, ``stage`` or ``alias``; default the
    latest version) as a service folder at ``path``.

    ``canary`` adds a candidate: ``{"version": 4, "steps": [10, 50, 100],
    "min_requests": 200, "max_error_rate": 0.01, "max_p99_ms": 200}``.
    ``reference`` is what :func:`nbops.monitor` compares live traffic with: by default
    the training sample stored with the version (``log_model(reference=)`` or a
    ``%%track`` cell); a DataFrame replaces it; ``False`` exports none.
    ``reference_target`` adds the true labels of the reference rows. ``image`` is the
    container image the manifests run (default ``<name>:<version>``);
    ``canary_percent`` (1-99) sets ``canaryTrafficPercent`` in ``kserve.yaml``, so
    KServe sends that share to this version and the rest to the one it replaces.
    Returns a dict:
    path, model_name, version, candidate_version, compiled, reference (what was
    written, or None), files. Raises RegistryError for an unknown model or version,
    ModelIntegrityError for a changed model file or training sample, ExportError for a
    bad canary plan or reference, or a non-empty folder without ``overwrite=True``."""
    from .. import registry
    from ..store import get_store

    store = get_store()
    rec = registry.get_model(name, version=version, stage=stage, alias=alias)
    plan = _canary_plan(canary, rec) if canary is not None else None
    if canary_percent is not None and (
        isinstance(canary_percent, bool)
        or not isinstance(canary_percent, int)
        or not 0 < canary_percent < 100
    ):
        raise ExportError(
            f"canary_percent must be a whole percentage from 1 to 99, got {canary_percent!r}"
        )
    image = (
        image
        or f"{deploy.k8s_name(rec['name'], rec['version']).rsplit('-v', 1)[0]}:{rec['version']}"
    )
    if not isinstance(image, str) or not image.strip() or any(c.isspace() for c in image):
        raise ExportError(
            f"image must be an image reference such as 'registry.example.com/wine:1', got {image!r}"
        )
    ref_frame, ref_meta = _reference_for(store, rec, reference, reference_target)
    folder = Path(path).expanduser().resolve()
    _prepare_folder(folder, overwrite)

    model = _write_version(store, rec, folder, ref_frame)
    out = {
        "path": str(folder),
        "model_name": rec["name"],
        "version": rec["version"],
        "candidate_version": None,
        "compiled": (folder / "model.npz").is_file(),
        "reference": None,
    }
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
    shutil.copyfile(ENTRY_FILE, folder / "serve.py")
    shutil.rmtree(folder / "runtime", ignore_errors=True)
    shutil.copytree(
        RUNTIME_DIR, folder / "runtime", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    # bytecode now, so the first start does not compile (paths recorded relative)
    import compileall

    compileall.compile_dir(folder / "runtime", ddir="runtime", quiet=1)
    (folder / "requirements.txt").write_text(deploy.requirements(rec))
    (folder / "Dockerfile").write_text(deploy.dockerfile(rec))
    (folder / ".dockerignore").write_text(deploy.DOCKERIGNORE)
    (folder / "kserve.yaml").write_text(
        deploy.to_yaml([deploy.kserve_manifest(rec, image, canary_percent)])
    )
    (folder / "k8s.yaml").write_text(deploy.to_yaml(deploy.k8s_manifests(rec, image)))
    (folder / "README.md").write_text(deploy.readme(rec, out["candidate_version"], image))
    out["image"] = image
    out["files"] = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    return out


def _canary_plan(canary: Any, rec: dict[str, Any]) -> dict[str, Any]:
    from .. import registry

    if not isinstance(canary, dict):
        raise ExportError("canary must be a dict such as {'version': 4, 'steps': [10, 50, 100]}")
    unknown = sorted(set(canary) - CANARY_KEYS)
    if unknown:
        raise ExportError(f"unknown canary keys {unknown}; use {sorted(CANARY_KEYS)}")
    picks = {k: canary.get(k) for k in ("version", "stage", "alias") if canary.get(k) is not None}
    if len(picks) != 1:
        raise ExportError(
            "canary needs exactly one of 'version', 'stage' or 'alias' to pick "
            "the candidate, e.g. canary={'version': 4}"
        )
    cand = registry.get_model(rec["name"], **picks)
    if cand["version"] == rec["version"]:
        raise ExportError(
            f"the canary candidate is version {cand['version']}, the version "
            "being exported; pick a different version for the candidate"
        )
    plan = {**CANARY_DEFAULTS, **{k: v for k, v in canary.items() if k not in picks}}
    steps = plan["steps"]
    if (
        not isinstance(steps, list)
        or not steps
        or not all(isinstance(s, int | float) and 0 < s <= 100 for s in steps)
        or steps != sorted(steps)
        or len(set(steps)) != len(steps)
    ):
        raise ExportError(
            f"canary steps {steps!r} must be rising percentages in (0, 100], e.g. [10, 50, 100]"
        )
    if steps[-1] != 100:
        plan["steps"] = [*steps, 100]
    if not isinstance(plan["min_requests"], int) or plan["min_requests"] < 1:
        raise ExportError(
            f"canary min_requests must be a positive int, got {plan['min_requests']!r}"
        )
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
            raise ExportError(
                f"{folder} is not empty; pass overwrite=True to replace the "
                "export there (its logs/ are kept), or choose another path"
            )
        if not (folder / "model.json").is_file():
            raise ExportError(
                f"{folder} holds files that are not an nbops export; refusing "
                "to overwrite them. Choose another path"
            )
        for stale in (
            "canary",
            "canary.json",
            "canary_state.json",
            "model.npz",
            "reference.parquet",
            "reference.csv",
            "logs/canary_state.json",
            "logs/metrics",
        ):
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
    # the service never needs the exporting machine's paths (the store is found through
    # NBOPS_STORE or nbops' default when events are synced)
    meta.update(
        {"model_name": rec["name"], "source_run": rec.get("run_id"), "file_name": file_name}
    )
    inputs = (rec.get("signature") or {}).get("inputs") or []
    if inputs and compile_model(model, folder / "model.npz", reference, inputs=inputs):
        from .runtime.codec import sha256_file

        meta["compiled"] = {"file": "model.npz", "sha256": sha256_file(folder / "model.npz")}
    (folder / "model.json").write_text(json.dumps(meta, indent=1, default=str))
    return model


def _reference_for(
    store: Any, rec: dict[str, Any], reference: Any, target: Any
) -> tuple[Any, dict[str, Any] | None]:
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
                "has no stored training sample to label; pass reference=X_train as well"
            )
        return None, None
    from ..registry import read_reference_file

    frame = read_reference_file(store.artifacts.verify(stored["sha256"]), stored["format"])
    if target is not None and (stored.get("sampled") or len(list(target)) != len(frame)):
        raise ExportError(
            f"reference_target has {len(list(target))} values, but the training sample of "
            f"version {rec['version']} keeps {len(frame)} of {stored.get('total_rows')} rows; "
            "pass the matching rows as reference= together with reference_target="
        )
    return frame, {
        "source": "training sample",
        "run_id": rec.get("run_id"),
        "total_rows": stored.get("total_rows"),
        "sampled": stored.get("sampled"),
        "sample_sha256": stored["sha256"],
    }


def _write_reference(
    folder: Path, model: Any, rec: dict[str, Any], reference: Any, target: Any
) -> dict[str, Any]:
    """Write the reference with the model's ``prediction`` (and ``target``); returns
    file, format, rows, sha256 and columns for model.json."""
    import pandas as pd

    from .runtime.codec import sha256_file

    if not isinstance(reference, pd.DataFrame):
        raise ExportError(
            "reference must be the training DataFrame (with the model's input columns)"
        )
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
            raise ExportError(
                f"reference_target has {len(values)} values for {len(frame)} reference rows"
            )
        frame["target"] = values
    try:
        frame.to_parquet(folder / "reference.parquet", index=False)
        name, fmt = "reference.parquet", "parquet"
    except ImportError:  # no pyarrow: CSV, which monitor reads as well
        frame.to_csv(folder / "reference.csv", index=False)
        name, fmt = "reference.csv", "csv"
    return {
        "file": name,
        "format": fmt,
        "rows": len(frame),
        "sha256": sha256_file(folder / name),
        "columns": [str(c) for c in frame.columns],
    }
