"""Helpers shared by the subcommands: printing frames, picking a model version."""

from __future__ import annotations

import argparse
from typing import Any


def _print_frame(frame: Any, fmt: str) -> None:
    if fmt == "json":
        print(frame.to_json(orient="records", date_format="iso", indent=2))
    elif fmt == "csv":
        print(frame.to_csv(index=False), end="")
    else:
        import pandas as pd

        with pd.option_context("display.max_rows", 200, "display.max_columns", 30,
                               "display.width", 200):
            print(frame.to_string(index=False) if len(frame) else "no runs yet")



def _pick_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="registered model name")
    pick = p.add_mutually_exclusive_group()
    pick.add_argument("--version", type=int)
    pick.add_argument("--stage", help="None, Staging, Production or Archived")
    pick.add_argument("--alias")

