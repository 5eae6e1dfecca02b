"""The stateful optimizers (SGD dampening, Adam/AdamW amsgrad, ...), their state_dict and
tg.optim.lr_scheduler against PyTorch: the same gradient sequence into both, parameters
and state compared after 100 steps; learning rates compared step by step (exactly: the
schedulers' arithmetic is PyTorch's, in Python floats)."""

import math
import warnings

import numpy as np
import pytest

import tracegraph as tg
from tracegraph import optim
from tracegraph.optim._stateful import _update_fn

SHAPES = [(8, 5), (8,), (3, 8), (3,)]


def _problem(steps=100, gaps=False, seed=0):
    """Initial parameters and a gradient sequence that shrinks (so AMSGrad's maximum
    differs from the second moment); with ``gaps`` parameter 3 has no gradient every 7th
    step (so its step count differs from the others')."""
    rng = np.random.default_rng(seed)
    init = [rng.normal(size=s).astype("f4") * 0.3 for s in SHAPES]
    grads = [[None if (gaps and i == 3 and t % 7 == 3) else
              (rng.normal(size=s) * 2 * 0.96**t).astype("f4") for i, s in enumerate(SHAPES)]
             for t in range(steps)]
    return init, grads


def _run(lib, make, init, grads, sched=None):
    """Params and optimizer after feeding ``grads`` (``lib``: "tg" or "torch")."""
    if lib == "torch":
        import torch

        ps = [torch.tensor(a, requires_grad=True) for a in init]
        opt = make(torch.optim, ps)
        s = sched(torch.optim.lr_scheduler, opt) if sched else None
        for gs in grads:
            for p, g in zip(ps, gs):
                p.grad = None if g is None else torch.tensor(g)
            opt.step()
            if s:
                s.step()
        return [p.detach().numpy().copy() for p in ps], opt
    ps = [tg.tensor(a, requires_grad=True) for a in init]
    opt = make(optim, ps)
    s = sched(optim.lr_scheduler, opt) if sched else None
    for gs in grads:
        for p, g in zip(ps, gs):
            p.grad = g
        opt.step()
        if s:
            s.step()
    return [np.asarray(p) for p in ps], opt


def _close(ours, theirs, tol=1e-5):
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol)


# Most tests share these two (same settings and shapes: compiled once).
def SGD_DAMPENING(m, p):
    """SGD over two parameter groups (the second with its own lr), with dampening."""
    return m.SGD([{"params": p[:2]}, {"params": p[2:], "lr": 0.01}], lr=0.05, momentum=0.9,
                 dampening=0.3, weight_decay=1e-3)


def ADAM_AMSGRAD(m, p):
    return m.Adam(p, lr=1e-2, amsgrad=True, weight_decay=1e-2)


OPTIMIZERS = {
    "sgd-dampening": SGD_DAMPENING,
    "adam-amsgrad": ADAM_AMSGRAD,
    "adamw-amsgrad": lambda m, p: m.AdamW(p, lr=1e-2, amsgrad=True, betas=(0.8, 0.99)),
    "sgd-dampening-nesterov-off-maximize": lambda m, p: m.SGD(
        p, lr=0.05, momentum=0.5, dampening=0.9, nesterov=False, maximize=True),
    # these ran before this file existed (tests/test_imperative.py trains them too)
    "sgd-nesterov": lambda m, p: m.SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "adam-maximize": lambda m, p: m.Adam(p, lr=1e-2, maximize=True),
    "adamw": lambda m, p: m.AdamW(p, lr=1e-2, weight_decay=0.1),
    "rmsprop-centered-momentum": lambda m, p: m.RMSprop(p, lr=1e-3, centered=True, momentum=0.9,
                                                        weight_decay=1e-3),
}
_DEFAULT = {"sgd-dampening", "adam-amsgrad"}  # the rest with -m slow


@pytest.mark.parametrize("name", [pytest.param(n, marks=[] if n in _DEFAULT else [pytest.mark.slow])
                                  for n in OPTIMIZERS])
def test_optimizer_equals_pytorch_over_100_steps(name):
    pytest.importorskip("torch")
    init, grads = _problem(gaps="adam" in name)  # Adam's bias correction counts steps
    ours, opt = _run("tg", OPTIMIZERS[name], init, grads)
    theirs, topt = _run("torch", OPTIMIZERS[name], init, grads)
    _close(ours, theirs)
    # the state too, under PyTorch's names (plain SGD's "step" is ours alone)
    state, tstate = opt.state_dict()["state"], topt.state_dict()["state"]
    assert sorted(state) == sorted(tstate)
    for i in tstate:
        names = {k for k, v in tstate[i].items() if v is not None}
        assert names <= set(state[i])
        _close([state[i][k] for k in sorted(names)], [tstate[i][k].numpy() for k in sorted(names)])
    if "amsgrad" in name:  # the maximum matters in this run
        s = state[0]
        assert np.max(np.asarray(s["max_exp_avg_sq"]) - np.asarray(s["exp_avg_sq"])) > 1e-3


def test_nesterov_with_dampening_is_refused_like_pytorch():
    p = tg.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="Nesterov momentum requires a momentum and zero dampening"):
        optim.SGD([p], lr=0.1, momentum=0.9, dampening=0.1, nesterov=True)
    with pytest.raises(ValueError, match="Invalid beta parameter at index 1"):
        optim.Adam([p], betas=(0.9, 1.0))


# -- state_dict ---------------------------------------------------------------------------

ROUND_TRIP = {
    "adam-amsgrad": ADAM_AMSGRAD,
    "sgd-dampening": SGD_DAMPENING,
    "rmsprop-centered-momentum": OPTIMIZERS["rmsprop-centered-momentum"],
}


@pytest.mark.parametrize("name", [pytest.param(n, marks=[pytest.mark.slow] if n.startswith("rms") else [])
                                  for n in sorted(ROUND_TRIP)])
def test_state_dict_round_trips_through_checkpoint_and_continues_identically(name, tmp_path):
    init, grads = _problem(steps=20, gaps="adam" in name)
    make = ROUND_TRIP[name]
    ps, opt = _run("tg", make, init, grads[:10])
    path = tmp_path / "opt.ckpt"
    tg.checkpoint.save(path, {"params": [np.asarray(p) for p in ps], "opt": opt.state_dict()})
    full, _ = _run("tg", make, init, grads)  # an uninterrupted run

    loaded = tg.checkpoint.load(path)
    qs = [tg.tensor(a, requires_grad=True) for a in loaded["params"]]
    other = make(optim, qs)
    for g in other.param_groups:
        g["lr"] = 123.0  # restored by load_state_dict
    other.load_state_dict(loaded["opt"])
    assert [g["lr"] for g in other.param_groups] == [g["lr"] for g in opt.param_groups]
    for gs in grads[10:]:
        for q, g in zip(qs, gs):
            q.grad = g
        other.step()
    for a, b in zip(qs, full):
        np.testing.assert_array_equal(np.asarray(a), b)


def test_state_dict_layout_is_pytorchs():
    pytest.importorskip("torch")
    make = SGD_DAMPENING
    init, grads = _problem(steps=3)
    _, opt = _run("tg", make, init, grads)
    _, topt = _run("torch", make, init, grads)
    sd, tsd = opt.state_dict(), topt.state_dict()
    assert [g["params"] for g in sd["param_groups"]] == [g["params"] for g in tsd["param_groups"]]
    for g, tg_ in zip(sd["param_groups"], tsd["param_groups"]):
        assert {k: g[k] for k in ("lr", "momentum", "dampening", "nesterov")} == \
            {k: tg_[k] for k in ("lr", "momentum", "dampening", "nesterov")}
    assert sorted(sd["state"]) == sorted(tsd["state"]) == [0, 1, 2, 3]
    assert sorted(sd["state"][0]) == ["momentum_buffer", "step"]
    assert int(sd["state"][3]["step"]) == 3  # parameter 3 had a gradient at every step


def test_pytorch_adam_state_dict_loads_and_continues_like_pytorch():
    pytest.importorskip("torch")
    make = ADAM_AMSGRAD
    init, grads = _problem(steps=20, gaps=True)
    mid, topt = _run("torch", make, init, grads[:10])
    qs = [tg.tensor(a, requires_grad=True) for a in mid]
    opt = make(optim, qs)
    opt.load_state_dict(topt.state_dict())
    for gs in grads[10:]:
        for q, g in zip(qs, gs):
            q.grad = g
        opt.step()
    full, _ = _run("torch", make, init, grads)
    _close(qs, full)


def test_load_state_dict_checks_groups_parameters_and_shapes():
    init, grads = _problem(steps=2)
    make = ADAM_AMSGRAD
    _, opt = _run("tg", make, init, grads)
    sd = opt.state_dict()
    ps = [tg.tensor(a, requires_grad=True) for a in init]

    two = optim.Adam([{"params": ps[:2]}, {"params": ps[2:]}], amsgrad=True)
    with pytest.raises(ValueError, match="has 1 parameter groups, the optimizer 2"):
        two.load_state_dict(sd)
    with pytest.raises(ValueError, match="group 0 has 4 parameters in the state dict, 3 in"):
        optim.Adam(ps[:3], amsgrad=True).load_state_dict(sd)
    swapped = optim.Adam([ps[1], ps[0], ps[2], ps[3]], lr=0.5, amsgrad=True)
    with pytest.raises(ValueError, match=r"parameter 0: state 'exp_avg' has shape \[8, 5\], the "
                                         r"parameter's needs \[8\]"):
        swapped.load_state_dict(sd)
    assert swapped.state == {} and swapped.param_groups[0]["lr"] == 0.5  # nothing changed
    plain = optim.Adam(ps)  # no amsgrad in the optimizer, but the settings say amsgrad=True
    plain.load_state_dict(sd)
    assert plain.param_groups[0]["amsgrad"] is True
    with pytest.raises(ValueError, match="lacks the settings"):
        optim.SGD(ps, lr=0.1).load_state_dict(sd)
    fewer = {"state": {0: {"step": 1}}, "param_groups": sd["param_groups"]}
    with pytest.raises(ValueError, match=r"holds \['step'\], this optimizer's state is"):
        optim.Adam(ps).load_state_dict(fewer)
    with pytest.raises(ValueError, match="expected a dict with 'state' and 'param_groups'"):
        optim.Adam(ps).load_state_dict({"state": {}})


# -- lr_scheduler -------------------------------------------------------------------------

SCHEDULERS = {
    "StepLR": lambda L, o: L.StepLR(o, step_size=7, gamma=0.5),
    "MultiStepLR": lambda L, o: L.MultiStepLR(o, [3, 10, 10, 20], gamma=0.3),
    "ExponentialLR": lambda L, o: L.ExponentialLR(o, gamma=0.9),
    "CosineAnnealingLR": lambda L, o: L.CosineAnnealingLR(o, T_max=10, eta_min=1e-3),
    "CosineAnnealingWarmRestarts": lambda L, o: L.CosineAnnealingWarmRestarts(o, T_0=4, T_mult=2,
                                                                             eta_min=1e-3),
    "LambdaLR": lambda L, o: L.LambdaLR(o, [lambda e: 0.9**e, lambda e: 1 / (e + 1)]),
    "MultiplicativeLR": lambda L, o: L.MultiplicativeLR(o, lambda e: 0.95),
    "LinearLR": lambda L, o: L.LinearLR(o, start_factor=0.25, end_factor=0.9, total_iters=8),
    "ConstantLR": lambda L, o: L.ConstantLR(o, factor=0.5, total_iters=4),
    "PolynomialLR": lambda L, o: L.PolynomialLR(o, total_iters=20, power=2.0),
    "OneCycleLR": lambda L, o: L.OneCycleLR(o, max_lr=[1.0, 0.5], total_steps=31),
    "OneCycleLR-three-phase-linear": lambda L, o: L.OneCycleLR(
        o, max_lr=0.3, total_steps=40, three_phase=True, anneal_strategy="linear", pct_start=0.25),
    "SequentialLR": lambda L, o: L.SequentialLR(
        o, [L.LinearLR(o, start_factor=0.1, total_iters=5), L.CosineAnnealingLR(o, T_max=20)],
        milestones=[5]),
    "SequentialLR-three": lambda L, o: L.SequentialLR(
        o, [L.ConstantLR(o, factor=0.2, total_iters=3), L.ExponentialLR(o, gamma=0.8),
            L.StepLR(o, 3, 0.5)], milestones=[4, 12]),
    "ChainedScheduler": lambda L, o: L.ChainedScheduler(
        [L.ConstantLR(o, factor=0.1, total_iters=2), L.ExponentialLR(o, gamma=0.9)]),
}


def _two_groups(lib, kind):
    if lib == "torch":
        import torch

        a, b, mod = torch.zeros(2, requires_grad=True), torch.zeros(1, requires_grad=True), torch.optim
    else:
        a, b, mod = tg.zeros(2, requires_grad=True), tg.zeros(1, requires_grad=True), optim
    groups = [{"params": [a]}, {"params": [b], "lr": 0.02}]
    return mod.SGD(groups, lr=0.1, momentum=0.9) if kind == "SGD" else mod.Adam(groups, lr=0.1)


def _lr_trace(lib, make, kind, steps=30, metrics=None):
    """The learning rates (and momenta) after the constructor and after each step."""
    opt = _two_groups(lib, kind)
    if lib == "torch":
        import torch

        sched = make(torch.optim.lr_scheduler, opt)
    else:
        sched = make(optim.lr_scheduler, opt)

    def record():
        return ([g["lr"] for g in opt.param_groups], list(sched.get_last_lr()),
                [g["momentum"] if kind == "SGD" else g["betas"] for g in opt.param_groups])

    out = [record()]
    for t in range(steps):
        opt.step()
        if metrics is None:
            sched.step()
        else:
            sched.step(metrics[t])
        out.append(record())
    return out, sched


@pytest.mark.parametrize("kind", ["SGD", "Adam"])
@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_scheduler_equals_pytorch_step_by_step(name, kind):
    pytest.importorskip("torch")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # neither warns in this order of calls
        ours, sched = _lr_trace("tg", SCHEDULERS[name], kind)
        theirs, tsched = _lr_trace("torch", SCHEDULERS[name], kind)
    assert ours == theirs  # the same float arithmetic: equal, not just close
    assert getattr(sched, "last_epoch", None) == getattr(tsched, "last_epoch", None)
    assert sched.base_lrs == getattr(tsched, "base_lrs", sched.base_lrs)
    # the state dict: PyTorch's entries, less text (OneCycleLR's phases) and a flag
    keys = set(tsched.state_dict()) - {"_get_lr_called_within_step", "_schedule_phases",
                                       "_anneal_func_type"}
    assert keys <= set(sched.state_dict())


def _plateau_metrics(n=40):
    rng = np.random.default_rng(3)
    down = list(np.linspace(1.0, 0.5, 8))
    return [float(x) for x in down + list(0.5 + 0.01 * rng.normal(size=n - len(down)))]


PLATEAU = {
    "min-rel": {"patience": 2},
    "min-abs-cooldown-minlr": {"patience": 1, "threshold": 0.005, "threshold_mode": "abs",
                               "cooldown": 2, "min_lr": [1e-3, 1e-4], "factor": 0.5},
    "max-rel": {"mode": "max", "patience": 3, "factor": 0.3, "min_lr": 0.004},
    "max-abs": {"mode": "max", "patience": 0, "threshold": 0.001, "threshold_mode": "abs",
                "cooldown": 1, "factor": 0.7},
}


@pytest.mark.parametrize("name", sorted(PLATEAU))
def test_reduce_lr_on_plateau_equals_pytorch(name):
    pytest.importorskip("torch")
    metrics = _plateau_metrics()
    if PLATEAU[name].get("mode") == "max":
        metrics = [-m for m in metrics]

    def make(L, o):
        return L.ReduceLROnPlateau(o, **PLATEAU[name])

    ours, sched = _lr_trace("tg", make, "SGD", steps=len(metrics), metrics=metrics)
    theirs, tsched = _lr_trace("torch", make, "SGD", steps=len(metrics), metrics=metrics)
    assert ours == theirs
    assert ours[-1][0] != ours[0][0]  # it did reduce
    assert (sched.best, sched.num_bad_epochs, sched.cooldown_counter) == \
        (tsched.best, tsched.num_bad_epochs, tsched.cooldown_counter)


def test_step_with_epoch_uses_the_closed_form_like_pytorch():
    torch = pytest.importorskip("torch")
    lrs = {}
    for lib, L in (("tg", optim.lr_scheduler), ("torch", torch.optim.lr_scheduler)):
        opt = _two_groups(lib, "SGD")
        sched = L.CosineAnnealingLR(opt, T_max=10)
        opt.step()
        with pytest.warns(UserWarning, match="epoch parameter"):
            sched.step(7)
        restarts = L.CosineAnnealingWarmRestarts(opt, T_0=3, T_mult=2)
        restarts.step(10.5)  # a fractional epoch: its own closed form
        lrs[lib] = sched.get_last_lr() + restarts.get_last_lr()
    assert lrs["tg"] == lrs["torch"]
    assert math.isclose(lrs["tg"][0], 0.1 * (1 + math.cos(math.pi * 0.7)) / 2)


def test_scheduler_before_optimizer_step_warns_like_pytorch():
    opt = _two_groups("tg", "SGD")
    sched = optim.lr_scheduler.StepLR(opt, 2)
    with pytest.warns(UserWarning, match="before `optimizer.step\\(\\)`"):
        sched.step()


def test_one_cycle_trains_like_pytorch_without_recompiling():
    """OneCycleLR changes lr and momentum (SGD) or betas (Adam) at every step: the
    parameters follow PyTorch's, and each group's update compiled once."""
    pytest.importorskip("torch")

    def sched(L, o):
        return L.OneCycleLR(o, max_lr=0.05, total_steps=30)

    for make in (SGD_DAMPENING, ADAM_AMSGRAD):
        init, grads = _problem(steps=30, gaps=make is ADAM_AMSGRAD)
        _run("tg", make, init, grads[:8])  # every signature of these updates compiled
        opt = make(optim, [tg.tensor(a, requires_grad=True) for a in init])
        update = _update_fn(type(opt), opt._flags_of(opt.param_groups[0]))
        compiled = update._cache_size()
        ours, _ = _run("tg", make, init, grads, sched)
        theirs, _ = _run("torch", make, init, grads, sched)
        _close(ours, theirs)
        assert update._cache_size() == compiled


def test_scheduler_state_dict_round_trips_through_checkpoint(tmp_path):
    """Optimizer and scheduler saved mid-run and loaded into new ones continue with the
    same learning rates and parameters."""
    init, grads = _problem(steps=20)
    L = optim.lr_scheduler
    make = SGD_DAMPENING

    def sched(L, o):
        return L.SequentialLR(o, [L.LinearLR(o, start_factor=0.1, total_iters=4),
                                  L.MultiStepLR(o, [3, 8], gamma=0.5)], milestones=[4])

    full, opt_full = _run("tg", make, init, grads, sched)  # an uninterrupted run
    qs = [tg.tensor(a, requires_grad=True) for a in init]
    opt = make(optim, qs)
    s = sched(L, opt)
    for gs in grads[:10]:
        for q, g in zip(qs, gs):
            q.grad = g
        opt.step()
        s.step()
    path = tmp_path / "run.ckpt"
    tg.checkpoint.save(path, {"params": [np.asarray(q) for q in qs], "opt": opt.state_dict(),
                              "sched": s.state_dict()})
    loaded = tg.checkpoint.load(path)
    rs = [tg.tensor(a, requires_grad=True) for a in loaded["params"]]
    opt2 = make(optim, rs)
    s2 = sched(L, opt2)  # before load_state_dict, as PyTorch recommends
    opt2.load_state_dict(loaded["opt"])
    s2.load_state_dict(loaded["sched"])
    assert s2.get_last_lr() == s.get_last_lr() and s2.last_epoch == s.last_epoch
    for gs in grads[10:]:
        for r, g in zip(rs, gs):
            r.grad = g
        opt2.step()
        s2.step()
    assert [g["lr"] for g in opt2.param_groups] == [g["lr"] for g in opt_full.param_groups]
    for a, b in zip(rs, full):
        np.testing.assert_array_equal(np.asarray(a), b)


def test_plateau_state_dict_round_trips_through_checkpoint(tmp_path):
    opt = _two_groups("tg", "SGD")
    s = optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", patience=1, min_lr=[0.0, 1e-3])
    for m in (1.0, 0.9, 0.8, 1.5, 1.2):
        s.step(m)
    tg.checkpoint.save(tmp_path / "s.ckpt", s.state_dict())
    s2 = optim.lr_scheduler.ReduceLROnPlateau(_two_groups("tg", "SGD"), mode="max")
    s2.load_state_dict(tg.checkpoint.load(tmp_path / "s.ckpt"))
    keys = ("best", "num_bad_epochs", "cooldown_counter", "last_epoch", "min_lrs", "patience",
            "_last_lr")
    assert {k: getattr(s2, k) for k in keys} == {k: getattr(s, k) for k in keys}


def test_scheduler_refuses_a_non_optimizer():
    with pytest.raises(TypeError, match="not a tracegraph stateful optimizer"):
        optim.lr_scheduler.StepLR(object(), 3)
    assert optim.lr_scheduler is tg.optim.lr_scheduler


def test_momentum_switched_on_mid_run_starts_its_buffer_like_pytorch():
    """A group's momentum set from 0 to 0.9 after some steps: PyTorch's buffer starts at
    the next gradient; here the state takes its new layout the same way."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    w0 = rng.normal(size=3).astype("f4")
    gs = [rng.normal(size=3).astype("f4") for _ in range(6)]
    p, q = tg.tensor(w0, requires_grad=True), torch.tensor(w0, requires_grad=True)
    ours, theirs = optim.SGD([p], lr=0.1), torch.optim.SGD([q], lr=0.1)
    for t, g in enumerate(gs):
        if t == 3:
            ours.param_groups[0]["momentum"] = theirs.param_groups[0]["momentum"] = 0.9
        p.grad, q.grad = g, torch.tensor(g)
        ours.step()
        theirs.step()
    _close([p], [q.detach().numpy()])
    _close([ours.state_dict()["state"][0]["momentum_buffer"]],
           [theirs.state_dict()["state"][0]["momentum_buffer"].numpy()])
