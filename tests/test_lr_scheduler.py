"""kg.optim.lr_scheduler: lr sequences against closed-form values and against torch's schedulers.

Schedulers update the lr recursively (lr *= factor), as PyTorch does, so against the closed forms
the values agree to rounding (rel 1e-12); against torch they are the same floating-point ops
(rel 1e-15 is asked, they are in fact identical)."""
import math
import warnings
from bisect import bisect_right

import pytest

import kernelgrad as kg
import kernelgrad.optim as optim
from kernelgrad.optim import lr_scheduler as S

N = 30
BASE = [0.1, 0.02]  # two parameter groups with different lrs


def _sgd(lrs=BASE, momentum=0.9):
    groups = [{"params": [kg.zeros(2, requires_grad=True)], "lr": lr} for lr in lrs]
    return optim.SGD(groups, lr=lrs[0], momentum=momentum)


def _sequence(sched, opt, n=N):
    """The lrs for epochs 0..n-1: get_last_lr() after construction, then after each step()."""
    out = [sched.get_last_lr()]
    assert out[0] == [g["lr"] for g in opt.param_groups]
    for _ in range(n - 1):
        opt.step()
        sched.step()
        out.append(sched.get_last_lr())
    return out


def _cos_anneal(start, end, pct):
    return end + (start - end) / 2 * (1 + math.cos(math.pi * pct))


def _onecycle(base_max_lr, k, total, pct_start=0.3, div=25.0, final_div=1e4):
    initial = base_max_lr / div
    end1 = pct_start * total - 1
    if k <= end1:
        return _cos_anneal(initial, base_max_lr, k / end1)
    return _cos_anneal(base_max_lr, initial / final_div, (k - end1) / (total - 1 - end1))


CLOSED_FORMS = {
    "StepLR": (lambda o: S.StepLR(o, step_size=7, gamma=0.5), lambda b, k: b * 0.5 ** (k // 7)),
    "MultiStepLR": (lambda o: S.MultiStepLR(o, milestones=[5, 12, 12, 20], gamma=0.3),
                    lambda b, k: b * 0.3 ** bisect_right([5, 12, 12, 20], k)),
    "ExponentialLR": (lambda o: S.ExponentialLR(o, gamma=0.9), lambda b, k: b * 0.9 ** k),
    "LinearLR": (lambda o: S.LinearLR(o, start_factor=0.25, end_factor=1.0, total_iters=8),
                 lambda b, k: b * (0.25 + 0.75 * min(k, 8) / 8)),
    "LinearLR-decay": (lambda o: S.LinearLR(o, start_factor=1.0, end_factor=0.1, total_iters=10),
                       lambda b, k: b * (1.0 - 0.9 * min(k, 10) / 10)),
    "LinearLR-default": (lambda o: S.LinearLR(o), lambda b, k: b * (1 / 3 + (2 / 3) * min(k, 5) / 5)),
    "CosineAnnealingLR": (lambda o: S.CosineAnnealingLR(o, T_max=10, eta_min=0.001),
                          lambda b, k: 0.001 + (b - 0.001) * (1 + math.cos(math.pi * k / 10)) / 2),
    "CosineAnnealingLR-eta0": (lambda o: S.CosineAnnealingLR(o, T_max=12),
                               lambda b, k: b * (1 + math.cos(math.pi * k / 12)) / 2),
    "LambdaLR": (lambda o: S.LambdaLR(o, lambda e: 0.95 ** e / (1 + e)), lambda b, k: b * 0.95 ** k / (1 + k)),
    "SequentialLR": (lambda o: S.SequentialLR(o, [S.LinearLR(o, start_factor=0.1, total_iters=5),
                                                  S.ExponentialLR(o, gamma=0.9)], milestones=[5]),
                     lambda b, k: b * (0.1 + 0.9 * k / 5) if k < 5 else b * 0.9 ** (k - 5)),
    "SequentialLR-3": (lambda o: S.SequentialLR(o, [S.LinearLR(o, start_factor=0.5, total_iters=4),
                                                    S.StepLR(o, step_size=3, gamma=0.5),
                                                    S.CosineAnnealingLR(o, T_max=8)], milestones=[4, 15]),
                       lambda b, k: (b * (0.5 + 0.5 * k / 4) if k < 4 else b * 0.5 ** ((k - 4) // 3) if k < 15
                                     else b * (1 + math.cos(math.pi * (k - 15) / 8)) / 2)),
    "OneCycleLR": (lambda o: S.OneCycleLR(o, max_lr=[1.0, 0.5], total_steps=N),
                   lambda b, k: _onecycle(b * 10 if b == 0.1 else 0.5, k, N)),
}


@pytest.mark.parametrize("name", list(CLOSED_FORMS))
def test_closed_form(name):
    make, formula = CLOSED_FORMS[name]
    opt = _sgd()
    sched = make(opt)
    for k, lrs in enumerate(_sequence(sched, opt)):
        for g, (b, lr) in enumerate(zip(BASE, lrs)):
            assert math.isclose(lr, formula(b, k), rel_tol=1e-12, abs_tol=1e-15), (k, g, lr, formula(b, k))
    assert sched.last_epoch == N - 1


TORCH_CONFIGS = {
    "StepLR": lambda M, o: M.StepLR(o, step_size=4, gamma=0.7),
    "MultiStepLR": lambda M, o: M.MultiStepLR(o, milestones=[3, 9, 9, 25], gamma=0.5),
    "ExponentialLR": lambda M, o: M.ExponentialLR(o, gamma=0.93),
    "LinearLR": lambda M, o: M.LinearLR(o, start_factor=0.05, end_factor=0.9, total_iters=17),
    "CosineAnnealingLR": lambda M, o: M.CosineAnnealingLR(o, T_max=7, eta_min=0.003),
    "LambdaLR": lambda M, o: M.LambdaLR(o, [lambda e: 1 / (e + 1), lambda e: 0.9 ** e]),
    "SequentialLR": lambda M, o: M.SequentialLR(
        o, [M.LinearLR(o, start_factor=0.2, total_iters=6), M.CosineAnnealingLR(o, T_max=9, eta_min=1e-4),
            M.ExponentialLR(o, gamma=0.8)], milestones=[6, 20]),
    "OneCycleLR": lambda M, o: M.OneCycleLR(o, max_lr=0.4, total_steps=N),
    "OneCycleLR-linear-3phase": lambda M, o: M.OneCycleLR(o, max_lr=[0.4, 0.3], epochs=3, steps_per_epoch=10,
                                                           anneal_strategy="linear", three_phase=True,
                                                           pct_start=0.25, div_factor=10.0, final_div_factor=100.0),
    "OneCycleLR-no-momentum": lambda M, o: M.OneCycleLR(o, max_lr=0.4, total_steps=N, cycle_momentum=False),
}


@pytest.mark.parametrize("opt_name", ["SGD", "Adam"])
@pytest.mark.parametrize("name", list(TORCH_CONFIGS))
def test_matches_torch(name, opt_name):
    torch = pytest.importorskip("torch")
    kw = dict(momentum=0.9) if opt_name == "SGD" else {}
    opt = getattr(optim, opt_name)([{"params": [kg.zeros(2, requires_grad=True)], "lr": lr} for lr in BASE], **kw)
    topt = getattr(torch.optim, opt_name)(
        [{"params": [torch.zeros(2, requires_grad=True)], "lr": lr} for lr in BASE], **kw)
    sched, tsched = TORCH_CONFIGS[name](S, opt), TORCH_CONFIGS[name](torch.optim.lr_scheduler, topt)
    key = "betas" if opt_name == "Adam" else "momentum"
    for k in range(N):
        assert sched.get_last_lr() == pytest.approx(tsched.get_last_lr(), rel=1e-15, abs=0), k
        for g, tg in zip(opt.param_groups, topt.param_groups):
            assert g["lr"] == pytest.approx(tg["lr"], rel=1e-15)
            assert g[key] == pytest.approx(tg[key], rel=1e-15), k
            assert g["initial_lr"] == pytest.approx(tg["initial_lr"], rel=1e-15)
        assert sched.last_epoch == tsched.last_epoch
        if k < N - 1:
            opt.step()
            topt.step()
            sched.step()
            tsched.step()


def test_onecycle_cycles_momentum_and_beta1():
    opt = _sgd(lrs=[0.1], momentum=0.9)
    sched = S.OneCycleLR(opt, max_lr=1.0, total_steps=N)
    group = opt.param_groups[0]
    assert group["initial_lr"] == 1.0 / 25 and group["max_lr"] == 1.0 and group["min_lr"] == 1.0 / 25 / 1e4
    moms = [group["momentum"]]
    for _ in range(N - 1):
        sched.step()
        moms.append(group["momentum"])
    end1 = 0.3 * N - 1
    for k, m in enumerate(moms):
        expected = (_cos_anneal(0.95, 0.85, k / end1) if k <= end1
                    else _cos_anneal(0.85, 0.95, (k - end1) / (N - 1 - end1)))
        assert math.isclose(m, expected, rel_tol=1e-12)
    assert math.isclose(sched.get_last_lr()[0], 1.0 / 25 / 1e4, rel_tol=1e-12)
    sched.step()  # epoch total_steps is still allowed (as in PyTorch), one more is not
    with pytest.raises(ValueError, match="Tried to step 31 times"):
        sched.step()
    adam = optim.Adam([kg.zeros(1, requires_grad=True)], betas=(0.9, 0.99))
    S.OneCycleLR(adam, max_lr=0.01, total_steps=10)
    assert adam.param_groups[0]["betas"] == (0.95, 0.99)


def test_scheduler_records_initial_lr_and_base_lrs():
    opt = _sgd()
    sched = S.ExponentialLR(opt, gamma=0.5)
    assert sched.base_lrs == BASE and [g["initial_lr"] for g in opt.param_groups] == BASE
    assert sched.last_epoch == 0
    sched.step()
    assert sched.get_last_lr() == [0.05, 0.01] and [g["lr"] for g in opt.param_groups] == [0.05, 0.01]
    assert [g["initial_lr"] for g in opt.param_groups] == BASE
    out = sched.get_last_lr()
    out[0] = 99.0  # a copy: changing it changes nothing
    assert sched.get_last_lr()[0] == 0.05


@pytest.mark.parametrize("name", ["StepLR", "MultiStepLR", "CosineAnnealingLR", "SequentialLR", "OneCycleLR",
                                  "LambdaLR", "LinearLR"])
def test_state_dict_round_trip(name):
    make, _ = CLOSED_FORMS[name]
    opt = _sgd()
    sched = make(opt)
    for _ in range(9):
        sched.step()
    sd, opt_sd = sched.state_dict(), opt.state_dict()
    assert "optimizer" not in sd and sd["last_epoch"] == 9
    opt2 = _sgd(lrs=[5.0, 6.0])
    sched2 = make(opt2)
    opt2.load_state_dict(opt_sd)
    sched2.load_state_dict(sd)
    assert sched2.get_last_lr() == sched.get_last_lr()
    for _ in range(12):
        sched.step()
        sched2.step()
        assert sched2.get_last_lr() == sched.get_last_lr()


def test_resuming_needs_initial_lr():
    opt = _sgd()
    with pytest.raises(KeyError, match="initial_lr"):
        S.StepLR(opt, step_size=2, last_epoch=3)
    S.StepLR(opt, step_size=2)
    S.StepLR(opt, step_size=2, last_epoch=3)  # now the groups have it


def test_step_with_epoch_uses_the_closed_form_and_warns():
    opt = _sgd()
    sched = S.StepLR(opt, step_size=3, gamma=0.1)
    with pytest.warns(UserWarning, match="epoch parameter"):
        sched.step(7)
    assert sched.get_last_lr() == pytest.approx([b * 0.01 for b in BASE], rel=1e-12)


def test_bad_arguments():
    opt = _sgd()
    with pytest.raises(TypeError, match="is not an Optimizer"):
        S.StepLR("sgd", step_size=1)
    with pytest.raises(ValueError, match="step_size"):
        S.StepLR(opt, step_size=0)
    with pytest.raises(ValueError, match="T_max"):
        S.CosineAnnealingLR(opt, T_max=0)
    with pytest.raises(ValueError, match="Starting multiplicative factor"):
        S.LinearLR(opt, start_factor=0)
    with pytest.raises(ValueError, match="Ending multiplicative factor"):
        S.LinearLR(opt, end_factor=1.5)
    with pytest.raises(ValueError, match="Expected 2 lr_lambdas, but got 1"):
        S.LambdaLR(opt, [lambda e: 1.0])
    with pytest.raises(ValueError, match="one more than the number of milestone"):
        S.SequentialLR(opt, [S.StepLR(opt, 2), S.StepLR(opt, 3)], milestones=[])
    with pytest.raises(ValueError, match="at least one scheduler"):
        S.SequentialLR(opt, [], milestones=[])
    with pytest.raises(ValueError, match="same optimizer"):
        S.SequentialLR(opt, [S.StepLR(opt, 2), S.StepLR(_sgd(), 3)], milestones=[3])
    with pytest.raises(ValueError, match="total_steps OR"):
        S.OneCycleLR(opt, max_lr=0.1)
    with pytest.raises(ValueError, match="positive integer total_steps"):
        S.OneCycleLR(opt, max_lr=0.1, total_steps=0)
    with pytest.raises(ValueError, match="pct_start"):
        S.OneCycleLR(opt, max_lr=0.1, total_steps=10, pct_start=1.5)
    with pytest.raises(ValueError, match="anneal_strategy"):
        S.OneCycleLR(opt, max_lr=0.1, total_steps=10, anneal_strategy="exp")
    with pytest.raises(ValueError, match="max_lr must have the same length"):
        S.OneCycleLR(opt, max_lr=[0.1], total_steps=10)
    with pytest.raises(ValueError, match="must support momentum or beta1"):
        S.OneCycleLR(optim.Adagrad([kg.zeros(1, requires_grad=True)]), max_lr=0.1, total_steps=10)


def test_no_warnings_in_normal_use():
    opt = _sgd()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sched = S.SequentialLR(opt, [S.LinearLR(opt), S.ExponentialLR(opt, 0.9)], milestones=[5])
        for _ in range(10):
            opt.step()
            sched.step()
