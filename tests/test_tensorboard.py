"""tg.tensorboard: the IR graph, scalars and histograms written with TensorBoard's own
protobufs and event writer, read back with TensorBoard's own reader (EventAccumulator),
the Keras-style callback's scalars from fit, and a real tensorboard server serving the
graph and the scalars on localhost."""

import os
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing import event_accumulator as ea  # noqa: E402

import tracegraph as tg  # noqa: E402


def model(x, w):
    with tg.scope("enc"), tg.scope("0"):
        h = tg.relu(x @ w)
    return tg.scan(lambda c, r: (c + r, c * 2.0), tg.zeros(4), h)[0].sum()


X, W = np.ones((3, 5), np.float32), np.ones((5, 4), np.float32)
LINE = model.__code__.co_firstlineno + 2


def read(log_dir):
    acc = ea.EventAccumulator(str(log_dir), size_guidance={ea.HISTOGRAMS: 0, ea.SCALARS: 0})
    acc.Reload()
    return acc


def test_graph_scopes_shapes_and_user_lines(tmp_path):
    tg.tensorboard.write_graph(model, tmp_path, X, W)
    nodes = {n.name: n for n in read(tmp_path).Graph().node}
    mm = nodes["enc/0/matmul_0"]  # %0 = matmul, in the scope enc.0
    assert mm.op == "matmul" and list(mm.input) == ["inputs/x", "inputs/w"]
    assert [d.size for d in mm.attr["_output_shapes"].list.shape[0].dim] == [3, 4]
    assert mm.attr["location"].s.decode() == f"test_tensorboard.py:{LINE}"
    assert mm.attr["types"].s.decode() == "f32[3,4]"
    assert nodes["inputs/x"].op == "Placeholder"
    # a control-flow node's body is a scope under the node
    assert nodes["scan_3/body/add_0"].op == "add"
    assert list(nodes["outputs/0"].input) == ["sum_5"]


def test_scalars_and_histograms_read_back(tmp_path):
    with tg.tensorboard.SummaryWriter(tmp_path / "train") as w:
        for step in range(3):
            w.add_scalar("loss", 1.0 / (step + 1), step)
            w.add_histogram("weights", np.arange(100.0) * step, step)
    acc = read(tmp_path / "train")
    assert [(e.step, round(e.value, 4)) for e in acc.Scalars("loss")] == [(0, 1.0), (1, 0.5), (2, 0.3333)]
    h = acc.Histograms("weights")[2].histogram_value
    assert h.num == 100 and h.max == 198.0 and sum(h.bucket) == 100


def test_fit_callback_writes_train_and_validation_scalars(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype(np.float32)
    y = (x.sum(1) > 0).astype(np.int32)
    model_ = tg.nn.Sequential([tg.nn.Linear(4, 8, key=tg.random.key(0)), tg.nn.functional.relu,
                               tg.nn.Linear(8, 2, key=tg.random.key(1))])
    model_.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model_.fit(x, y, epochs=2, batch_size=16, validation_split=0.25, verbose=0,
               callbacks=[tg.callbacks.TensorBoard(tmp_path)])
    train, val = read(tmp_path / "train"), read(tmp_path / "validation")
    assert [e.step for e in train.Scalars("epoch_loss")] == [0, 1]
    assert "epoch_accuracy" in train.Tags()["scalars"] and "epoch_loss" in val.Tags()["scalars"]


def test_fit_callback_histograms_steps_per_second_and_a_profile(tmp_path):
    import glob

    import jax

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype(np.float32)
    y = (x.sum(1) > 0).astype(np.int32)
    model_ = tg.nn.Sequential([tg.nn.Linear(4, 8, key=tg.random.key(0)), tg.nn.functional.relu,
                               tg.nn.Linear(8, 2, key=tg.random.key(1))])
    model_.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    board = tg.callbacks.TensorBoard(tmp_path, histogram_freq=1, write_steps_per_second=True,
                                     profile_batch=(2, 3))
    model_.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[board])
    train = read(tmp_path / "train")
    hists = train.Tags()["histograms"]
    assert {"0.weight", "0.bias", "2.weight", "2.bias"} <= set(hists), hists
    assert [e.step for e in train.Histograms("0.weight")] == [0, 1]
    assert train.Histograms("0.weight")[0].histogram_value.num == 32
    assert [e.step for e in train.Scalars("epoch_steps_per_second")] == [0, 1]
    # the trace where TensorBoard's Profile dashboard looks: <run>/plugins/profile/<session>/
    traces = glob.glob(str(tmp_path / "train" / "plugins" / "profile" / "*" / "*.xplane.pb"))
    assert len(traces) == 1
    events = [e for p in jax.profiler.ProfileData.from_file(traces[0]).planes for ln in p.lines
              for e in ln.events]
    assert events  # the two profiled steps ran


def test_fit_callback_bad_arguments_are_clear():
    for bad in ((3, 2), -1, "a,b", (0, 2), True):
        with pytest.raises(tg.callbacks.CallbackError, match="profile_batch"):
            tg.callbacks.TensorBoard("logs", profile_batch=bad)
    with pytest.raises(tg.callbacks.CallbackError, match="histogram_freq"):
        tg.callbacks.TensorBoard("logs", histogram_freq=-1)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_a_real_tensorboard_server_serves_the_graph_and_scalars(tmp_path):
    tg.tensorboard.write_graph(model, tmp_path / "run", X, W)
    with tg.tensorboard.SummaryWriter(tmp_path / "run") as w:
        w.add_scalar("loss", 0.5, 1)
    # and what fit's callback writes (runs fit/train and fit/validation)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 4)).astype(np.float32)
    y = (x.sum(1) > 0).astype(np.int32)
    net = tg.nn.Sequential([tg.nn.Linear(4, 2, key=tg.random.key(0)), tg.nn.Softmax()])
    net.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    net.fit(x, y, epochs=2, batch_size=16, validation_split=0.25, verbose=0,
            callbacks=[tg.callbacks.TensorBoard(tmp_path / "fit")])
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", str(tmp_path), "--host",
         "127.0.0.1", "--port", str(port), "--load_fast=false"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.time() + 90
        while True:
            try:
                runs = urllib.request.urlopen(f"{base}/data/runs", timeout=5).read().decode()
                if "run" in runs:
                    break
            except OSError:
                pass
            if time.time() > deadline or server.poll() is not None:
                pytest.fail("tensorboard did not serve the run")
            time.sleep(0.5)
        deadline = time.time() + 60
        while True:  # the server loads runs in the background
            tags = urllib.request.urlopen(f"{base}/data/plugin/scalars/tags", timeout=10).read().decode()
            if '"fit/validation"' in tags or time.time() > deadline:
                break
            time.sleep(0.5)
        assert '"loss"' in tags and '"epoch_loss"' in tags and '"epoch_accuracy"' in tags
        assert '"fit/train"' in tags and '"fit/validation"' in tags
        points = urllib.request.urlopen(f"{base}/data/plugin/scalars/scalars?run=fit/train&tag=epoch_loss",
                                        timeout=10).read().decode()
        assert points.count("[") >= 3  # two epochs: [[wall, step, value], [...]]
        graph = urllib.request.urlopen(f"{base}/data/plugin/graphs/graph?run=run", timeout=10).read().decode()
        assert 'name: "enc/0/matmul_0"' in graph and "test_tensorboard.py" in graph
    finally:
        server.terminate()
        server.wait(timeout=30)
