"""nbops.Client(store): the API bound to one store, without touching the default."""

from __future__ import annotations

import threading

import pytest

import nbops


def _one_run(name: str, acc: float) -> str:
    with nbops.start_run(name=name, experiment="e") as run:
        nbops.log_metric("accuracy", acc)
    return run.run_id


def test_client_reads_and_writes_its_own_store(store, tmp_path):
    mine = _one_run("mine", 0.5)
    theirs = nbops.Client(tmp_path / "theirs")
    with theirs.start_run(name="theirs", experiment="e") as run:
        run.log_metric("accuracy", 0.9)
    assert nbops.runs().run_id.tolist() == [mine]
    assert theirs.runs().run_id.tolist() == [run.run_id]
    assert theirs.get_run(run.run_id)["metrics"]["accuracy"] == 0.9
    with pytest.raises(nbops.RunNotFoundError):
        theirs.get_run(mine)


def test_client_calls_leave_the_default_store_alone(store, tmp_path):
    before = nbops.get_store_path()
    nbops.Client(tmp_path / "other").runs()
    assert nbops.get_store_path() == before


def test_clients_in_threads_never_see_each_others_store(tmp_path):
    a, b = nbops.Client(tmp_path / "a"), nbops.Client(tmp_path / "b")
    errors: list[BaseException] = []

    def work(client: nbops.Client, label: str) -> None:
        try:
            for i in range(20):
                with client.start_run(name=f"{label}-{i}") as run:
                    run.log_param("who", label)
                assert set(client.runs()["params.who"]) == {label}
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=work, args=(a, "a")),
        threading.Thread(target=work, args=(b, "b")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(a.runs()) == len(b.runs()) == 20


def test_client_registry_calls_use_its_store(tmp_path):
    from sklearn.linear_model import LogisticRegression

    client = nbops.Client(tmp_path / "reg")
    X, y = [[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1]
    with client.start_run(name="fit") as run:
        model = LogisticRegression().fit(X, y)
        client.log_model(model, signature=X)
    rec = client.register(run.run_id, "clf")
    client.transition("clf", rec["version"], "Production", reason="first")
    assert client.get_model("clf", stage="Production")["version"] == rec["version"]
    assert client.models()["name"].tolist() == ["clf"]


def test_unknown_method_names_the_problem(tmp_path):
    client = nbops.Client(tmp_path / "x")
    with pytest.raises(AttributeError, match="no method 'nope'"):
        client.nope()
    assert "runs" in dir(client) and "set_store" not in dir(client)


def test_client_run_binds_a_helper_of_your_own(tmp_path):
    client = nbops.Client(tmp_path / "helper")
    client.run(_one_run, "helper", 0.7)
    assert client.runs()["metrics.accuracy"].tolist() == [0.7]
    with pytest.raises(nbops.NbopsError, match="needs a function"):
        client.run("not callable")
