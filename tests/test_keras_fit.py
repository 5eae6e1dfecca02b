"""Keras-style training on tg.nn modules: model.compile / fit / evaluate / predict, the
callbacks, the losses and metrics by Keras' names, and the weights left in the model.

The models are small MLPs on scikit-learn's bundled digits (no download). Models with the
same architecture and compile settings share one compiled step (see nn/_trainer.py), so
most tests pay no compilation."""

import os
import sys
import types

import jax
import numpy as np
import optax
import pytest

import tracegraph as tg
from conftest import has_module

pytestmark = pytest.mark.skipif(not has_module("sklearn"), reason="the digits come with scikit-learn")

HERE = os.path.basename(__file__)
LOGITS = tg.losses.SparseCategoricalCrossentropy(from_logits=True)  # for models ending in logits


@pytest.fixture(scope="module")
def digits():
    return tg.data.load_digits(seed=0)


def pytorch_mlp(seed=0):
    """Built PyTorch style (no key=): its parameters are imperative tensors."""
    tg.manual_seed(seed)
    return tg.nn.Sequential([tg.nn.Linear(64, 32), tg.nn.ReLU(), tg.nn.Linear(32, 10),
                             tg.nn.Softmax()])


def keyed_mlp(seed=0, dropout=0.0):
    """Built with keys: an immutable pytree of arrays. (The global seed still decides
    what compile draws from it: fit's shuffling and dropout keys.)"""
    tg.manual_seed(seed)
    k1, k2 = tg.random.split(tg.random.key(seed))
    layers = [tg.nn.Linear(64, 32, key=k1), tg.relu]
    if dropout:
        layers.append(tg.nn.Dropout(dropout))
    return tg.nn.Sequential(layers + [tg.nn.Linear(32, 10, key=k2)])


def compiled(model, *args, **kwargs):
    model.compile(*args, **kwargs)
    return model


@pytest.fixture(scope="module")
def trained(digits):
    """The reference run: compile("adam", sparse CE, accuracy) + fit with
    validation_split, in jit mode (the default)."""
    tg.manual_seed(1)
    model = compiled(pytorch_mlp(), "adam", "sparse_categorical_crossentropy", ["accuracy"])
    history = model.fit(digits.x_train, digits.y_train, epochs=15, batch_size=32,
                        validation_split=0.1, verbose=0)
    return model, history


# -- training and its results -----------------------------------------------------------------


def test_mlp_reaches_high_accuracy_in_jit_mode(trained, digits):
    model, history = trained
    assert history.history["val_accuracy"][-1] > 0.9
    loss, accuracy = model.evaluate(digits.x_test, digits.y_test, verbose=0)
    assert accuracy > 0.9 and loss < 0.5


def test_history_holds_one_value_per_epoch(trained):
    model, history = trained
    assert isinstance(history, tg.callbacks.History) and model.history is history
    assert history.epoch == list(range(15))
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(v) == 15 and all(isinstance(x, float) for x in v)
               for v in history.history.values())
    losses = history.history["loss"]
    assert losses[-1] < losses[0] / 3
    assert model.optimizer.iterations == 15 * -(-int(0.9 * 1438) // 32)


def test_evaluate_and_predict_match_a_manual_computation(trained, digits):
    model, _ = trained
    x, y = digits.x_test, digits.y_test  # 359 examples: batches of 50 leave 9 over
    probs = np.asarray(tg.jit(lambda m, x: m(x))(model, x))
    manual_loss = float(np.mean(-np.log(np.clip(probs[np.arange(len(y)), y], 1e-7, 1 - 1e-7))))
    manual_accuracy = float(np.mean(probs.argmax(1) == y))

    predicted = model.predict(x, batch_size=50, verbose=0)
    assert isinstance(predicted, np.ndarray) and predicted.shape == (359, 10)
    np.testing.assert_allclose(predicted, probs, rtol=1e-5, atol=1e-6)

    loss, accuracy = model.evaluate(x, y, batch_size=50, verbose=0)
    assert loss == pytest.approx(manual_loss, rel=1e-5)
    assert accuracy == pytest.approx(manual_accuracy, rel=1e-6)
    logs = model.evaluate(x, y, batch_size=64, verbose=0, return_dict=True)
    assert list(logs) == ["loss", "accuracy"]
    assert logs["loss"] == pytest.approx(manual_loss, rel=1e-5)

    alone = compiled(pytorch_mlp(), "adam", "sparse_categorical_crossentropy")
    alone.set_weights(model.get_weights())
    only_loss = alone.evaluate(x, y, verbose=0)
    assert isinstance(only_loss, float) and only_loss == pytest.approx(manual_loss, rel=1e-5)


@pytest.mark.parametrize("mode", ["interpret", "eager", "compile"])
def test_each_mode_takes_the_same_steps_as_jit(mode, digits):
    x, y = digits.x_train[:64], digits.y_train[:64]
    runs = {}
    for m in ("jit", mode):  # a PyTorch-style loss module: called criterion(y_pred, y_true)
        model = compiled(keyed_mlp(), "sgd", tg.nn.CrossEntropyLoss(), mode=m)
        history = model.fit(x, y, batch_size=32, epochs=1, shuffle=False, verbose=0)
        runs[m] = history.history["loss"][0], model.get_weights()
    assert runs[mode][0] == pytest.approx(runs["jit"][0], rel=1e-5)
    for a, b in zip(runs[mode][1], runs["jit"][1]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_shuffling_draws_a_new_order_every_epoch():
    # batch_size 1, learning rate 0: each step's loss (y - 0)^2 names the example it saw
    x = np.zeros((8, 1), np.float32)
    y = np.arange(8, dtype=np.float32) + 1
    model = tg.nn.Linear(1, 1, key=tg.random.key(0))
    model = model.replace(weight=np.zeros((1, 1), np.float32), bias=np.zeros(1, np.float32))
    model.compile(tg.optim.sgd(0.0), "mse")
    orders = []

    def record(batch, logs):
        running = logs["loss"]
        seen = (batch + 1) * running - batch * record.previous if batch else running
        record.previous = running
        orders[-1].append(int(round(np.sqrt(seen))) - 1)

    record.previous = 0.0
    log = tg.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs: orders.append([]),
                                      on_train_batch_end=record)
    model.fit(x, y, batch_size=1, epochs=3, verbose=0, callbacks=[log])
    model.fit(x, y, batch_size=1, epochs=1, verbose=0, callbacks=[log])
    assert all(sorted(o) == list(range(8)) for o in orders)
    assert len({tuple(o) for o in orders}) == 4  # each epoch, and the next fit, reshuffle
    model.fit(x, y, batch_size=1, epochs=1, verbose=0, shuffle=False, callbacks=[log])
    assert orders[-1] == list(range(8))


# -- the weights stay in the model ------------------------------------------------------------


def test_pytorch_style_parameters_keep_their_identity_and_get_the_new_data(digits):
    model = compiled(pytorch_mlp(), "adam", "sparse_categorical_crossentropy", ["accuracy"])
    tensors = model.parameters()
    before = [np.asarray(t) for t in tensors]
    model.fit(digits.x_train[:200], digits.y_train[:200], epochs=1, verbose=0)
    after = model.parameters()
    assert all(a is b for a, b in zip(after, tensors))
    assert all(isinstance(t, tg.Tensor) and t.requires_grad for t in after)
    assert all(np.abs(np.asarray(t) - b).max() > 0 for t, b in zip(after, before))
    eager_out = np.asarray(model(tg.tensor(digits.x_test[:5])))  # PyTorch-style call
    np.testing.assert_allclose(eager_out, model.predict(digits.x_test[:5], verbose=0),
                               rtol=1e-5, atol=1e-6)


def test_an_interrupted_fit_keeps_what_the_finished_steps_learned(digits):
    model = compiled(pytorch_mlp(), "adam", "sparse_categorical_crossentropy", ["accuracy"])
    before = model.get_weights()

    def interrupt(batch, logs):
        if batch == 4:
            raise KeyError("interrupted")

    with pytest.raises(KeyError, match="interrupted"):  # the callback's own error, as raised
        model.fit(digits.x_train, digits.y_train, verbose=0,
                  callbacks=[tg.callbacks.LambdaCallback(on_train_batch_end=interrupt)])
    assert model.optimizer.iterations == 5
    assert all(np.abs(a - b).max() > 0 for a, b in zip(model.get_weights(), before))


def test_keyed_modules_get_their_leaves_swapped_in_place(digits):
    model = keyed_mlp(dropout=0.1)  # the Sequential passes a fresh dropout key per step
    first = model.layers[0]
    w0 = first.weight
    model.compile(tg.optim.adam(1e-2), LOGITS, ["accuracy"])
    model.fit(digits.x_train, digits.y_train, epochs=3, verbose=0)
    assert model.layers[0] is first and first.weight is not w0
    assert np.abs(np.asarray(first.weight) - np.asarray(w0)).max() > 0
    assert jax.tree_util.tree_leaves(model)[0] is first.weight
    logits = tg.jit(lambda m, x: m(x, train=False))(model, digits.x_test)
    np.testing.assert_allclose(np.asarray(logits), model.predict(digits.x_test, verbose=0),
                               rtol=1e-5, atol=1e-5)
    assert model.evaluate(digits.x_test, digits.y_test, verbose=0)[1] > 0.85


# -- callbacks --------------------------------------------------------------------------------


def test_early_stopping_stops_and_restores_the_best_weights(digits):
    x, y = digits.x_train[:256], digits.y_train[:256]
    model = compiled(keyed_mlp(), tg.optim.sgd(0.05), LOGITS)
    # epoch 0 descends; from epoch 1 on a negative rate climbs: val_loss gets worse
    schedule = tg.callbacks.LearningRateScheduler(lambda epoch, lr: 0.05 if epoch == 0 else -0.5)
    best = []
    keep = tg.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: best.append(model.get_weights()) if epoch == 0 else None)
    stop = tg.callbacks.EarlyStopping(patience=1, restore_best_weights=True)
    history = model.fit(x, y, epochs=20, verbose=0, validation_data=(digits.x_test, digits.y_test),
                        callbacks=[schedule, keep, stop])
    assert history.epoch == [0, 1] and stop.stopped_epoch == 1 and stop.best_epoch == 0
    assert history.history["val_loss"][1] > history.history["val_loss"][0]
    for a, b in zip(model.get_weights(), best[0]):
        np.testing.assert_array_equal(a, b)

    flat = compiled(keyed_mlp(), tg.optim.sgd(0.0), LOGITS)
    stop = tg.callbacks.EarlyStopping(monitor="loss", patience=2, min_delta=1e-3)
    history = flat.fit(x, y, epochs=20, verbose=0, callbacks=[stop])
    assert history.epoch == [0, 1, 2] and stop.stopped_epoch == 2


def test_model_checkpoint_writes_loadable_checkpoints(digits, tmp_path):
    model = compiled(pytorch_mlp(), "adam", "sparse_categorical_crossentropy", ["accuracy"])
    every = tg.callbacks.ModelCheckpoint(str(tmp_path / "epoch{epoch:02d}.ckpt"))
    best = tg.callbacks.ModelCheckpoint(str(tmp_path / "best.ckpt"), monitor="val_accuracy",
                                        save_best_only=True)
    model.fit(digits.x_train[:300], digits.y_train[:300], epochs=2, validation_split=0.2,
              verbose=0, callbacks=[every, best])
    assert sorted(os.listdir(tmp_path)) == ["best.ckpt", "epoch01.ckpt", "epoch02.ckpt"]
    info = tg.checkpoint.info(tmp_path / "epoch02.ckpt")
    assert info.metadata["epoch"] == 2 and info.step == model.optimizer.iterations
    assert set(info.metadata["logs"]) == {"loss", "accuracy", "val_loss", "val_accuracy"}

    fresh = pytorch_mlp(seed=5)
    fresh.load_weights(tmp_path / "epoch02.ckpt")
    for a, b in zip(fresh.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    tree = tg.checkpoint.load(tmp_path / "epoch01.ckpt", like=model)
    assert [np.shape(a) for a in jax.tree_util.tree_leaves(tree)] == [
        np.shape(a) for a in model.get_weights()]


def test_learning_rate_scheduler_changes_the_rate_without_a_new_trace(digits):
    traces = []

    def loss(y_true, y_pred):  # runs once per trace
        traces.append(1)
        return tg.losses.sparse_categorical_crossentropy(y_true, y_pred)

    model = compiled(pytorch_mlp(), tg.optim.adam(1e-2), loss)
    weights = []
    keep = tg.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: weights.append(model.get_weights()))
    schedule = tg.callbacks.LearningRateScheduler(lambda epoch, lr: [1e-2, 0.0, 5e-3][epoch])
    history = model.fit(digits.x_train[:256], digits.y_train[:256], epochs=3, verbose=0,
                        callbacks=[schedule, keep])
    assert len(traces) == 1
    assert history.history["learning_rate"] == [1e-2, 0.0, 5e-3]
    assert model.optimizer.learning_rate == 5e-3
    for a, b in zip(weights[0], weights[1]):  # a rate of 0 left the weights alone
        np.testing.assert_array_equal(a, b)
    assert any(np.abs(a - b).max() > 0 for a, b in zip(weights[1], weights[2]))
    model.optimizer.learning_rate = 1e-3  # set by hand, between fits: still no trace
    model.fit(digits.x_train[:64], digits.y_train[:64], epochs=1, verbose=0)
    assert len(traces) == 1
    # another model of the same architecture, compiled alike (another rate): the same step
    other = compiled(pytorch_mlp(seed=3), tg.optim.adam(3e-3), loss)
    other.fit(digits.x_train[:64], digits.y_train[:64], epochs=1, verbose=0)
    assert len(traces) == 1 and other.optimizer.learning_rate == 3e-3


def test_keras_optimizer_objects_are_converted(digits):
    model = compiled(pytorch_mlp(), tg.optimizers.Adam(learning_rate=1e-2), "sparse_categorical_crossentropy",
                     ["acc"])
    history = model.fit(digits.x_train, digits.y_train, epochs=3, verbose=0)
    assert history.history["acc"][-1] > 0.85
    assert model.optimizer.learning_rate == pytest.approx(1e-2)


def test_tensorboard_needs_a_writer(monkeypatch, tmp_path):
    for name in ("tensorboard", "tensorboardX", "torch.utils.tensorboard"):
        monkeypatch.setitem(sys.modules, name, None)  # as if not installed
    with pytest.raises(tg.Error, match="pip install tensorboard"):
        tg.callbacks.TensorBoard(str(tmp_path))

    written = []

    class SummaryWriter:
        def __init__(self, log_dir):
            self.log_dir = log_dir

        def add_scalar(self, tag, value, step):
            written.append((os.path.basename(self.log_dir), tag, value, step))

        def flush(self): ...
        def close(self): ...

    monkeypatch.setitem(sys.modules, "tensorboardX", types.SimpleNamespace(SummaryWriter=SummaryWriter))
    board = tg.callbacks.TensorBoard(str(tmp_path))
    board.on_epoch_end(0, {"loss": 0.5, "val_loss": 0.7})
    assert written == [("train", "epoch_loss", 0.5, 0), ("validation", "epoch_loss", 0.7, 0)]


# -- data forms, losses, progress -------------------------------------------------------------


def test_fit_takes_an_iterable_of_batches(digits):
    model = compiled(keyed_mlp(dropout=0.1), tg.optim.adam(1e-2), LOGITS, ["accuracy"])
    batches = tg.data.batches(digits.train, 32, seed=0)  # 45 batches, the last of 30
    history = model.fit(batches, epochs=3, verbose=0,
                        validation_data=tg.data.batches(digits.test, 32))
    assert history.epoch == [0, 1, 2]
    assert history.history["accuracy"][-1] > 0.85
    assert history.history["val_accuracy"][-1] > 0.85
    listed = [(b["x"], b["y"]) for b in tg.data.batches(digits.test, 32)]
    assert model.evaluate(listed, verbose=0)[1] == pytest.approx(history.history["val_accuracy"][-1])


def test_keras_losses_follow_keras_semantics():
    y = np.array([0.0, 1.0, 1.0], np.float32)
    p = np.array([[0.2], [0.9], [0.6]], np.float32)  # (N, 1) against (N,): no broadcasting
    logits = np.array([[2.0, -1.0, 0.5], [0.1, 0.2, 3.0]], np.float32)
    ids = np.array([0, 2], np.int32)
    probs = np.asarray(jax.nn.softmax(logits))

    @tg.jit  # one compiled graph: the losses are tracegraph ops
    def values(y, p, ids, logits, probs):
        return [tg.losses.MeanSquaredError()(y, p), tg.losses.BinaryCrossentropy()(y, p),
                tg.losses.SparseCategoricalCrossentropy(from_logits=True)(ids, logits),
                tg.losses.get("sparse_categorical_crossentropy")(ids, probs),
                tg.losses.CategoricalCrossentropy()(tg.one_hot(ids, 3), probs),
                tg.metrics.sparse_categorical_accuracy(ids, probs)]

    mse, bce, sparse_logits, sparse_probs, categorical, accuracy = values(y, p, ids, logits, probs)
    assert float(mse) == pytest.approx(np.mean((y - p[:, 0]) ** 2), rel=1e-6)
    assert float(bce) == pytest.approx(
        -np.mean(y * np.log(p[:, 0]) + (1 - y) * np.log(1 - p[:, 0])), rel=1e-5)
    expected = float(-np.mean(jax.nn.log_softmax(logits)[np.arange(2), ids]))
    for value in (sparse_logits, sparse_probs, categorical):
        assert float(value) == pytest.approx(expected, rel=1e-5)
    np.testing.assert_array_equal(accuracy, [1.0, 1.0])
    assert tg.metrics.get("accuracy", np.zeros((4, 1)), np.zeros((4, 1)))[1] is tg.metrics.binary_accuracy
    assert tg.metrics.get("accuracy", np.zeros(4), np.zeros((4, 3)))[1] is \
        tg.metrics.sparse_categorical_accuracy
    assert tg.metrics.get("acc", np.zeros((4, 3)), np.zeros((4, 3)))[0] == "acc"


def test_a_probability_loss_on_logits_warns(digits):
    model = compiled(keyed_mlp(), "adam", "sparse_categorical_crossentropy")  # ends in logits
    with pytest.warns(tg.nn._trainer.ProbabilityWarning, match="from_logits=True"):
        model.fit(digits.x_train[:64], digits.y_train[:64], verbose=0)


def test_regression_with_mae_and_a_scalar_target_column():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 3)).astype(np.float32)
    y = x @ np.array([1.0, -2.0, 0.5], np.float32) + 0.3  # (N,) targets, (N, 1) outputs
    model = compiled(tg.nn.Linear(3, 1, key=tg.random.key(1)), tg.optim.sgd(0.1), "mse", ["mae"])
    history = model.fit(x, y, epochs=20, batch_size=32, verbose=0)
    assert history.history["loss"][-1] < 1e-3 and history.history["mae"][-1] < 0.03
    np.testing.assert_allclose(np.asarray(model.weight).ravel(), [1.0, -2.0, 0.5], atol=0.02)


def test_progress_bar_and_verbose(digits, capsys):
    model = compiled(pytorch_mlp(), "adam", "sparse_categorical_crossentropy", ["accuracy"])
    x, y = digits.x_train[:96], digits.y_train[:96]
    model.fit(x, y, epochs=1, verbose=0)
    model.evaluate(x, y, verbose=0)
    model.predict(x, verbose=0)
    assert capsys.readouterr().out == ""
    model.fit(x, y, epochs=2, verbose=2)
    out = capsys.readouterr().out
    assert "Epoch 1/2" in out and "Epoch 2/2" in out and "3/3" in out and "loss: " in out
    pytest.importorskip("tqdm")
    model.fit(x, y, epochs=1, verbose=1)
    out = capsys.readouterr().out
    assert "Epoch 1/1" in out and "accuracy: " in out and "ex/s" in out


# -- mistakes ---------------------------------------------------------------------------------


def _here(excinfo) -> bool:
    return f"{HERE}:" in str(excinfo.value)


def test_mistakes_name_the_call_and_the_users_line(digits):
    model = pytorch_mlp()
    with pytest.raises(tg.Error, match=r"fit: .*compile") as e:
        model.fit(digits.x_train, digits.y_train)
    assert _here(e)
    with pytest.raises(tg.Error, match=r"compile: unknown loss 'sparse_crossentropy'") as e:
        model.compile("adam", "sparse_crossentropy")
    assert _here(e) and "sparse_categorical_crossentropy" in str(e.value)
    with pytest.raises(tg.Error, match=r"compile: unknown optimizer 'adma'") as e:
        model.compile("adma", "mse")
    assert _here(e)
    with pytest.raises(tg.Error, match=r"compile: unknown metric 'accuarcy'") as e:
        model.compile("adam", "mse", ["accuarcy"])
    assert _here(e)
    model.compile("adam", "sparse_categorical_crossentropy")
    with pytest.raises(tg.Error, match=r"fit: y is missing") as e:
        model.fit(digits.x_train)
    assert _here(e)
    with pytest.raises(tg.Error, match=r"fit: y is missing.*model.fit\(\*\*ds.train\)"):
        model.fit(digits.train)
    with pytest.raises(tg.Error, match=r"fit: x and y differ in length: x has 1438 examples, "
                                       r"y has 1000") as e:
        model.fit(digits.x_train, digits.y_train[:1000])
    assert _here(e)
    with pytest.raises(tg.Error, match=r"evaluate: x and y differ in length") as e:
        model.evaluate(digits.x_test, digits.y_train)
    assert _here(e)
    with pytest.raises(tg.Error, match="validation_split"):
        model.fit(tg.data.batches(digits.train, 64), validation_split=0.1)
    fixed = compiled(pytorch_mlp(), tg.optim.wrap(optax.adam(1e-3)),
                     "sparse_categorical_crossentropy")
    with pytest.raises(tg.Error, match=r"fit: the learning rate of .* is not a number") as e:
        fixed.fit(digits.x_train[:32], digits.y_train[:32], verbose=0,
                  callbacks=[tg.callbacks.LearningRateScheduler(lambda epoch, lr: lr)])
    assert _here(e) and isinstance(e.value, tg.train.TrainingError)


def test_tg_train_fit_runs_on_the_same_loop(digits):
    from tracegraph.nn import functional as F

    def loss(model, batch):
        return F.cross_entropy(model(batch["x"]), batch["y"])

    seen = []
    state, hist = tg.train.fit(keyed_mlp(), tg.data.batches(digits.train, 64, seed=0),
                               loss=loss, optimizer=tg.optim.sgd(0.1), epochs=2,
                               progress=False, callback=lambda i, s, m: seen.append(i))
    assert len(hist.losses) == 46 == len(hist.step_times) and seen == list(range(1, 47))
    assert len(hist.epoch_losses) == 2 and hist.epoch_losses[1] < hist.epoch_losses[0]
    assert hist.examples == 2 * 1438
    assert tg.train.evaluate(loss, state.model, [digits.test])["value"] < hist.losses[0]
