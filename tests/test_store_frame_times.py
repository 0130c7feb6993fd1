"""runs() keeps working when stored time stamps differ in precision (seconds, ms, us):
the cached frame holds every time column in one unit."""

from __future__ import annotations

import nbops
from nbops.store import get_store


def test_runs_lists_time_stamps_of_mixed_precision(store):
    first = nbops.start_run(name="a")
    first.end()
    st = get_store()
    st.update_run(
        first.run_id,
        {"start_time": "2026-01-01T00:00:05+00:00", "end_time": "2026-01-01T00:00:06+00:00"},
    )
    assert len(nbops.runs()) == 1  # the frame is built with second-precision stamps
    second = nbops.start_run(name="b")
    second.end()
    st.update_run(first.run_id, {"end_time": "2026-01-01T00:00:07.123456+00:00"})
    frame = nbops.runs()  # patches the cached frame: a finer stamp into the same column
    assert len(frame) == 2
    ends = dict(zip(frame.run_id, frame.end_time, strict=True))
    assert ends[first.run_id].microsecond == 123456
    assert ends[first.run_id].second == 7


def test_a_fresh_process_reads_the_same_mixed_stamps(store):
    import subprocess
    import sys

    run = nbops.start_run(name="a")
    run.end()
    st = get_store()
    st.update_run(
        run.run_id,
        {"start_time": "2026-01-01T00:00:05+00:00", "end_time": "2026-01-01T00:00:06+00:00"},
    )
    nbops.runs()  # builds the frame with second-precision stamps and caches it
    other = nbops.start_run(name="b")
    other.end()
    st.update_run(run.run_id, {"end_time": "2026-01-01T00:00:07.123456+00:00"})
    code = "import nbops; f = nbops.runs(); print(len(f), f.end_time.dtype)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "NBOPS_STORE": str(store)},
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[0] == "2"


def test_runs_lists_a_run_that_ended_after_the_frame_was_built(store):
    # the frame is built while no run has an end time (an all-empty time column), then
    # the end time arrives as a patch
    run = nbops.start_run(name="open")
    run.flush()
    assert nbops.runs().end_time.isna().all()
    run.end()
    frame = nbops.runs()
    assert frame.end_time.notna().all()
    assert frame.status.tolist() == ["FINISHED"]
