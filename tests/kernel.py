"""A real IPython kernel (ipykernel) driven over ZMQ, as Jupyter does. Plain Python with
no pytest import, so the tests (through conftest.py) and the corpus benchmark share it."""

from __future__ import annotations

import queue
from pathlib import Path


class Kernel:
    """A real IPython kernel (ipykernel) driven over ZMQ, as Jupyter does."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        from jupyter_client import KernelManager

        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel(cwd=str(cwd), env=env)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)

    def run(self, code: str, timeout: float = 120) -> dict:
        """Execute code; returns {status, outputs, text, error, data}."""
        msg_id = self.kc.execute(code)
        outputs, text, data = [], [], []
        error = None
        while True:
            try:
                msg = self.kc.get_iopub_msg(timeout=timeout)
            except queue.Empty:
                raise TimeoutError(
                    f"kernel did not finish within {timeout} s: {code[:80]}"
                ) from None
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "status" and content["execution_state"] == "idle":
                break
            outputs.append((kind, content))
            if kind == "stream":
                text.append(content["text"])
            elif kind in ("execute_result", "display_data"):
                data.append(content["data"])
            elif kind == "error":
                error = content
        reply = self.kc.get_shell_msg(timeout=timeout)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = self.kc.get_shell_msg(timeout=timeout)
        if error is None and reply["content"]["status"] == "error":
            error = reply["content"]  # e.g. UsageError: printed, not sent as an error message
        return {
            "status": reply["content"]["status"],
            "outputs": outputs,
            "text": "".join(text),
            "error": error,
            "data": data,
        }

    def interrupt(self) -> None:
        """Interrupt the running cell, as the stop button does."""
        self.km.interrupt_kernel()

    def close(self, now: bool = True) -> None:
        """Stop the kernel: at once, or (``now=False``) by a normal shutdown, in which
        background model writes finish first."""
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=now)
