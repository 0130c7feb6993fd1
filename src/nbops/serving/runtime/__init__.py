"""The nbops model service, standalone: this package imports nothing from nbops.

``nbops export`` copies it as is into the service folder (as ``runtime/``) next to
``serve.py``, which only calls :func:`runtime.main.main`. It needs numpy, and for HTTP
starlette and uvicorn; scikit-learn and skops load only when the model has no numpy
predictor (``model.npz``) or an input needs the real model.

Modules, one job each:

- ``codec``: JSON, the error types, sha256 and the skops trust check;
- ``inputs``: the MLflow request formats (JSON, CSV, Parquet) and signature checks;
- ``oip``: the Open Inference Protocol v2 with its binary tensor extension;
- ``predictors``: numpy programs for linear models, trees, forests, boosting and
  scikit-learn pipelines of scalers, imputers and encoders (``model.npz``);
- ``model``: one model version (start-up checks, loading, predicting);
- ``log``, ``metrics``, ``canary``: prediction log, Prometheus text, canary routing;
- ``service``: the state the HTTP app and the batch command share;
- ``openapi``, ``http``: the routes and the contract they publish;
- ``main``: ``serve.py``'s command line (serve, workers, batch ``predict``).
"""
