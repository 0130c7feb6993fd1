"""``nbops.log_model``: a fitted model (and a sample of its training data) as artifacts
of a run.

The model is saved with skops (:mod:`nbops.modelfile`); its entry in the run's
``models`` list carries the sha256, flavour, trusted types, library versions and
signature that :func:`nbops.register` copies into a registry version. The training
sample (at most :data:`nbops.datasets.REFERENCE_MAX_ROWS` rows, seeded) is stored next
to it as a content-addressed artifact of kind "reference": the model's default drift
reference. This module sits in the tracking layer: it knows runs, never the registry.
"""

from __future__ import annotations

import re
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._errors import NbopsError, RegistryError
from .._util import unique_name, utc_now
from ..datasets import REFERENCE_SEED, fingerprint, sample_bytes, training_sample
from ..modelfile import MODEL_FILE_NAME, dump_model, normalise_signature
from . import active

if TYPE_CHECKING:
    from .run import Run

#: what a model name (in a run, and in the registry) may look like
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")


def check_model_name(name: Any, what: str = "model name") -> str:
    """``name`` when it is usable as a model name; RegistryError saying what is allowed."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise RegistryError(
            f"{what} {name!r} is not usable: use letters, digits, '_', '-' or '.', "
            "starting with a letter or digit (e.g. 'churn-model')"
        )
    return name


def log_model(
    model: Any,
    name: str | None = None,
    signature: Any = None,
    run: Run | None = None,
    reference: Any = None,
) -> dict[str, Any]:
    """Save a fitted scikit-learn model (skops) as an artifact of the active run.

    ``name`` names the model within the run (default ``"model"``); ``signature`` is
    the training DataFrame/array (columns and dtypes are read from it), a dict
    ``{"inputs": [...], "outputs": {...}}``, or None to infer it from the model.
    ``reference`` is the training DataFrame: a sample of at most
    ``REFERENCE_MAX_ROWS`` rows of its input columns is stored with the model and
    becomes the default drift reference of an export (:func:`nbops.monitor`).
    Returns the run's model entry (name, artifact, sha256, flavour, trusted_types,
    library_versions, signature, and ``reference`` when one was stored). Raises
    NbopsError when no run is active and RegistryError for something that is not a
    fitted scikit-learn estimator or a reference without the model's columns."""
    if run is None:
        run = active.current()
        if run is None:
            raise NbopsError(
                "no active run to log a model to; wrap the training code in "
                "`with nbops.start_run():` or put %%track on the cell"
            )
    name = check_model_name(name or "model")
    sig = normalise_signature(signature, model)  # before writing anything
    sample = training_sample(reference, sig)
    with tempfile.TemporaryDirectory(prefix="nbops-model-") as tmp:
        facts = dump_model(model, Path(tmp) / MODEL_FILE_NAME)
        artifact_name = MODEL_FILE_NAME if name == "model" else f"{name}/{MODEL_FILE_NAME}"
        artifact = run.log_artifact(Path(tmp) / MODEL_FILE_NAME, name=artifact_name, kind="model")
    entries: list[dict[str, Any]] = list(run.recorded("models") or [])
    same = [e for e in entries if e["name"] == name]
    if same and same[-1]["sha256"] == facts["sha256"]:
        if sample is None:
            return dict(same[-1])
        # the same model again, with (other) training data: the entry points at the newest
        stored = _store_sample(run, name, *sample)
        if (same[-1].get("reference") or {}).get("sha256") == stored["sha256"]:
            return dict(same[-1])
        entry = {**same[-1], "reference": stored}
        entries[entries.index(same[-1])] = entry
        run.update_info(models=entries)
        run.flush()
        return dict(entry)
    if same:  # another model under this name: keep both, like artifacts do
        taken = {e["name"] for e in entries}
        new_name = unique_name(name, taken)
        warnings.warn(
            f"nbops: run {run.run_id} already has a model {name!r}; this one is "
            f"logged as {new_name!r}",
            stacklevel=2,
        )
        name = new_name
    entry = {"name": name, "artifact": artifact["name"], **facts, "signature": sig}
    if sample is not None:
        entry["reference"] = _store_sample(run, name, *sample)
    if signature is not None and not isinstance(signature, dict):
        _link_training_data(run, signature)
    run.update_info(models=[*entries, entry])
    run.flush()
    return dict(entry)


def _store_sample(run: Run, name: str, frame: Any, total: int) -> dict[str, Any]:
    """Store the sample as a content-addressed artifact of the run (kind "reference");
    returns the model entry's ``reference`` field."""
    data, fmt = sample_bytes(frame)
    file_name = f"reference.{fmt}"
    artifact = run.log_artifact_bytes(
        data, file_name if name == "model" else f"{name}/{file_name}", kind="reference"
    )
    return {
        "artifact": artifact["name"],
        "sha256": artifact["sha256"],
        "size": artifact["size"],
        "format": fmt,
        "rows": len(frame),
        "total_rows": total,
        "sampled": len(frame) < total,
        "seed": REFERENCE_SEED,
        "columns": [str(c) for c in frame.columns],
    }


def _link_training_data(run: Run, data: Any) -> None:
    """Record the signature's data as an input dataset of the run (for lineage)."""
    try:
        fp = fingerprint(data)
    except NbopsError:
        return
    run.store.add_dataset(
        {
            **fp,
            "name": None,
            "first_seen": utc_now(),
            "source": f"log_model signature, run {run.run_id}",
        }
    )
    run.add_input(fp["digest"])
