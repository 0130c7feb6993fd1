"""The command line of a service folder (``python serve.py ...``) and batch scoring.

::

    python serve.py [--host H] [--port N] [--workers N] [--token T] [--access-log]
    python serve.py predict --input in.csv --output out.csv [--batch-size N]

The port comes from ``--port``, else the ``PORT`` environment variable (as container
platforms set it), else ``NBOPS_PORT``, else 8000; the host from ``--host`` or
``NBOPS_HOST`` (default 127.0.0.1). The model folder is checked before anything
listens; once the socket is bound the service prints one line saying where it
listens. ``--workers N`` runs N processes on one socket, forked once the model is
loaded (uvicorn's spawning supervisor where there is no fork); a worker that dies is
replaced; they share the prediction log and add up their ``/metrics``. A canary needs
one process (its routing and state live in memory), so ``--workers`` above 1 is
refused with one.
Exit status 2 is a start-up error (bad folder, port in use), printed as one line.
"""

import argparse
import json
import os
import shutil
import socket
import sys
from pathlib import Path
from typing import Any

from .codec import ServiceError, StartupError
from .inputs import Table
from .service import Service

FOLDER_ENV = "NBOPS_SERVICE_FOLDER"


def predict_file(service: Service, source: Path, dest: Path, batch_size: int = 10000) -> int:
    """Score a CSV or Parquet file in batches; writes the inputs plus a ``prediction``
    column to ``dest`` (CSV or Parquet by its suffix). Returns the number of rows.
    Raises ServiceError for rows the model cannot take, OSError for unreadable files."""
    import pandas as pd

    mv = service.stable
    if source.suffix.lower() in (".parquet", ".pq"):
        frame = pd.read_parquet(source)
    else:
        frame = pd.read_csv(source)
    preds: list[Any] = []
    for start in range(0, len(frame), batch_size):
        part = frame.iloc[start : start + batch_size]
        rows = part.astype(object).where(part.notna(), None).values.tolist()
        cols, checked = mv.matrix(Table([str(c) for c in part.columns], rows))
        preds.extend(mv.predict(cols, checked))
    out = frame.copy()
    out["prediction"] = preds
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.suffix.lower() in (".parquet", ".pq"):
        out.to_parquet(dest, index=False)
    else:
        out.to_csv(dest, index=False)
    return len(out)


def _predict_command(argv: list[str], here: Path) -> int:
    parser = argparse.ArgumentParser(
        prog="serve.py predict", description="Score a CSV or Parquet file in batches."
    )
    parser.add_argument("--input", required=True, type=Path)
    parser.add_argument("--output", required=True, type=Path)
    parser.add_argument("--batch-size", type=int, default=10000)
    parser.add_argument("--folder", type=Path, default=here)
    args = parser.parse_args(argv)
    try:
        service = Service(args.folder)
        n = predict_file(service, args.input, args.output, args.batch_size)
    except (StartupError, ServiceError, FileNotFoundError) as exc:
        print(f"error: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 2
    print(f"scored {n} rows -> {args.output}")
    return 0


def _default_port() -> int:
    for var in ("PORT", "NBOPS_PORT"):
        value = os.environ.get(var)
        if value:
            try:
                return int(value)
            except ValueError:
                raise SystemExit(f"error: {var}={value!r} is not a port number") from None
    return 8000


def parser_for(here: Path) -> argparse.ArgumentParser:
    """The argument parser of ``serve.py`` (serving)."""
    parser = argparse.ArgumentParser(prog="serve.py", description="Serve the exported model.")
    parser.add_argument("--host", default=os.environ.get("NBOPS_HOST", "127.0.0.1"))
    parser.add_argument(
        "--port", type=int, default=None, help="default: $PORT, else $NBOPS_PORT, else 8000"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("WORKERS", 1)),
        help="processes serving one socket (env WORKERS; default 1)",
    )
    parser.add_argument(
        "--token",
        default=os.environ.get("NBOPS_SERVE_TOKEN"),
        help="require 'Authorization: Bearer TOKEN' (env NBOPS_SERVE_TOKEN)",
    )
    parser.add_argument(
        "--access-log",
        action="store_true",
        default=os.environ.get("NBOPS_ACCESS_LOG") == "1",
        help="print one line per request to stdout",
    )
    parser.add_argument("--folder", type=Path, default=here)
    parser.add_argument("--log-max-bytes", type=int, default=50 * 1024 * 1024)
    return parser


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (raises OSError when it is taken)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def worker_app() -> Any:
    """The app of one worker process (``--workers``): options come from the environment
    the supervisor set."""
    from .http import create_app

    service = Service(
        Path(os.environ[FOLDER_ENV]),
        log_max_bytes=int(os.environ.get("NBOPS_LOG_MAX_BYTES", 50 << 20)),
        token=os.environ.get("NBOPS_SERVE_TOKEN") or None,
        shared_metrics=True,
    )
    return create_app(service, access_log=os.environ.get("NBOPS_ACCESS_LOG") == "1")


def main(argv: list[str] | None = None, here: Path | None = None) -> int:
    """Run ``serve.py``'s command line; returns the exit status."""
    here = here or Path.cwd()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "predict":
        return _predict_command(argv[1:], here)
    if argv and argv[0] == "serve":
        argv = argv[1:]
    args = parser_for(here).parse_args(argv)
    port = args.port if args.port is not None else _default_port()
    try:
        service = Service(
            args.folder,
            log_max_bytes=args.log_max_bytes,
            token=args.token,
            shared_metrics=args.workers > 1,
        )
        if args.workers < 1:
            raise StartupError(f"--workers must be at least 1, got {args.workers}")
        if args.workers > 1 and service.canary is not None:
            raise StartupError(
                "a canary runs in one process; drop --workers or export without the canary"
            )
        if args.workers == 1:
            service.load()
        else:  # the model now, shared by forked workers; log threads start in each
            for mv in service.versions():
                mv.load()
    except StartupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    import uvicorn

    options = dict(
        host=args.host,
        port=port,
        log_level="warning",
        access_log=False,
        server_header=False,
        date_header=False,
    )
    from .http import create_app

    if args.workers > 1:
        shutil.rmtree(Path(args.folder) / "logs" / "metrics", ignore_errors=True)
    if args.workers == 1 or hasattr(os, "fork"):
        # one process, or workers forked from this one: the model is checked and loaded
        # once, and every worker starts at once
        config = uvicorn.Config(create_app(service, access_log=args.access_log), **options)
    else:  # no fork (Windows): uvicorn's supervisor spawns workers that import the app
        os.environ.update(
            {
                FOLDER_ENV: str(Path(args.folder).resolve()),
                "NBOPS_LOG_MAX_BYTES": str(args.log_max_bytes),
                "NBOPS_ACCESS_LOG": "1" if args.access_log else "0",
                "NBOPS_SERVE_TOKEN": args.token or "",
            }
        )
        config = uvicorn.Config(
            f"{__package__}.main:worker_app", factory=True, workers=args.workers, **options
        )
    try:
        sock = bind(args.host, port)
    except OSError as exc:
        print(
            f"error: cannot listen on {args.host}:{port}: {exc.strerror or exc}; pick "
            "another --port",
            file=sys.stderr,
        )
        return 2
    where = f"http://{args.host}:{sock.getsockname()[1]}"
    _write_listening(Path(args.folder), where)
    print(
        f"nbops service: {service.name} v{service.stable.label} listening on {where}"
        + (f" ({args.workers} workers)" if args.workers > 1 else ""),
        flush=True,
    )
    try:
        _serve(config, sock, args.workers)
    finally:
        (Path(args.folder) / "logs" / "listening.json").unlink(missing_ok=True)
    return 0


def _write_listening(folder: Path, where: str) -> None:
    """logs/listening.json: where this service answers locally (for nbops.monitor)."""
    local = where.replace("://0.0.0.0:", "://127.0.0.1:").replace("://[::]:", "://[::1]:")
    path = folder / "logs" / "listening.json"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"url": local, "pid": os.getpid()}))
    except OSError:  # a read-only folder: monitoring then needs url=
        pass


def _serve(config: Any, sock: socket.socket, workers: int) -> None:
    import uvicorn

    if workers == 1:
        uvicorn.Server(config).run(sockets=[sock])
    elif hasattr(os, "fork"):
        _prefork(config, sock, workers)
    else:
        import inspect

        from uvicorn.supervisors import Multiprocess

        # uvicorn >= 0.30 builds the workers' servers itself; older versions take target=
        if "target" in inspect.signature(Multiprocess.__init__).parameters:
            Multiprocess(config, target=uvicorn.Server(config).run, sockets=[sock]).run()
        else:
            Multiprocess(config, sockets=[sock]).run()


def _prefork(config: Any, sock: socket.socket, workers: int) -> None:
    """Fork ``workers`` processes that serve ``sock``; replace one that dies; on SIGTERM
    or SIGINT stop them all (each finishes its requests and writes its logs)."""
    import signal

    import uvicorn

    children: set[int] = set()
    stopping = False

    def spawn() -> None:
        pid = os.fork()
        if pid == 0:  # the worker: uvicorn handles its own signals
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            code = 0
            try:
                uvicorn.Server(config).run(sockets=[sock])
            except BaseException:  # noqa: BLE001 - a worker never returns into the parent
                code = 1
            finally:
                os._exit(code)
        children.add(pid)

    def stop(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for _ in range(workers):
        spawn()
    while children:
        try:
            pid, _ = os.wait()
        except ChildProcessError:
            break
        children.discard(pid)
        if not stopping:
            spawn()  # a worker died: keep the number of workers
