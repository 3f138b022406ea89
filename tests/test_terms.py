"""Knowledge terms against hand-computed references on small tensors."""
import math

import numpy as np
import pytest
from compress.errors import UserError
import torch

from compress.distill import schedules, terms


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


S = np.array([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])
T_ = np.array([[2.0, 1.0, 0.0], [1.0, 1.0, 1.0]])


def test_kl_matches_hand_computation_with_t_squared():
    T = 2.0
    p, q = _softmax(T_ / T), _softmax(S / T)
    expected = (p * np.log(p / q)).sum(-1).mean() * T * T
    got = terms.KL(T=T)(torch.tensor(S), torch.tensor(T_))
    assert got.item() == pytest.approx(expected, rel=1e-9)


def test_kl_is_zero_for_identical_logits_and_positive_otherwise():
    x = torch.randn(4, 5)
    assert terms.KL()(x, x).item() == pytest.approx(0.0, abs=1e-9)
    assert terms.KL()(x, x + torch.randn(4, 5)).item() > 0


def test_jsd_matches_hand_computation_and_is_bounded():
    p, q = _softmax(S), _softmax(T_)
    m = 0.5 * (p + q)
    expected = (0.5 * (p * np.log(p / m)).sum(-1) + 0.5 * (q * np.log(q / m)).sum(-1)).mean()
    got = terms.JSD()(torch.tensor(S), torch.tensor(T_))
    assert got.item() == pytest.approx(expected, rel=1e-9)
    # disjoint one-hot-like distributions approach ln 2, never exceed it
    far = terms.JSD()(torch.tensor([[100.0, -100.0]]), torch.tensor([[-100.0, 100.0]]))
    assert far.item() == pytest.approx(math.log(2), rel=1e-6)
    rand = terms.JSD()(torch.randn(64, 7) * 5, torch.randn(64, 7) * 5)
    assert 0.0 <= rand.item() <= math.log(2)


def test_mse():
    got = terms.MSE()(torch.tensor(S), torch.tensor(T_))
    assert got.item() == pytest.approx(((S - T_) ** 2).mean())


def _pdist(x):
    return np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))


def _huber(a, b):
    d = np.abs(a - b)
    return np.where(d < 1, 0.5 * d ** 2, d - 0.5).mean()


def test_rkd_distance_matches_park_et_al():
    rng = np.random.default_rng(0)
    s, t = rng.normal(size=(5, 3)), rng.normal(size=(5, 8))  # widths may differ
    off = ~np.eye(5, dtype=bool)
    ds, dt = _pdist(s), _pdist(t)
    ds, dt = ds / ds[off].mean(), dt / dt[off].mean()
    got = terms.RKDDistance()(torch.tensor(s), torch.tensor(t))
    assert got.item() == pytest.approx(_huber(ds, dt), rel=1e-9)


def test_rkd_angle_matches_park_et_al():
    rng = np.random.default_rng(1)
    s, t = rng.normal(size=(4, 3)), rng.normal(size=(4, 6))

    def angles(x):
        n = len(x)
        out = np.zeros((n, n, n))
        for j in range(n):
            for i in range(n):
                for k in range(n):
                    a, b = x[i] - x[j], x[k] - x[j]
                    na, nb = np.linalg.norm(a), np.linalg.norm(b)
                    a = a / na if na > 0 else a
                    b = b / nb if nb > 0 else b
                    out[j, i, k] = a @ b
        return out

    got = terms.RKDAngle()(torch.tensor(s), torch.tensor(t))
    assert got.item() == pytest.approx(_huber(angles(s), angles(t)), rel=1e-9)


def test_similarity_preserving_matches_tung_and_mori():
    rng = np.random.default_rng(2)
    s, t = rng.normal(size=(6, 4)), rng.normal(size=(6, 9))

    def g(x):
        m = x @ x.T
        return m / np.linalg.norm(m, axis=1, keepdims=True)

    expected = ((g(s) - g(t)) ** 2).sum() / 36
    got = terms.SimilarityPreserving()(torch.tensor(s), torch.tensor(t))
    assert got.item() == pytest.approx(expected, rel=1e-9)


def test_policy_branches_and_mask():
    s = torch.tensor([[1.0, 0.0, 2.0, 0.0, 1.0]])
    t = torch.tensor([[0.0, 1.0, 1.0, 3.0, 0.0]])
    mask = torch.tensor([[True, True, False, True, True]])
    term = terms.Policy(kind="kl", branches=[3, 2], mask_key="mask")
    got = term(s, t, {"mask": mask}).item()
    # branch 1: actions 0, 1 allowed; branch 2: actions 3, 4
    p1, q1 = _softmax(np.array([0.0, 1.0])), _softmax(np.array([1.0, 0.0]))
    p2, q2 = _softmax(np.array([3.0, 0.0])), _softmax(np.array([0.0, 1.0]))
    expected = 0.5 * ((p1 * np.log(p1 / q1)).sum() + (p2 * np.log(p2 / q2)).sum())
    assert got == pytest.approx(expected, rel=1e-5)


def test_policy_q_teacher_uses_temperature_softmax():
    q = torch.tensor([[1.0, 2.0, 4.0]])
    s = torch.tensor([[0.3, 0.1, 0.2]])
    got = terms.Policy(teacher_q=True, q_T=0.5)(s, q).item()
    p, r = _softmax(q.numpy()[0] / 0.5), _softmax(s.numpy()[0])
    assert got == pytest.approx((p * np.log(p / r)).sum(), rel=1e-5)


def test_policy_errors_name_the_problem():
    with pytest.raises(ValueError, match="branches"):
        terms.Policy(branches=[2, 2])(torch.zeros(1, 5), torch.zeros(1, 5))
    with pytest.raises(ValueError, match="mask"):
        terms.Policy(mask_key="mask")(torch.zeros(1, 3), torch.zeros(1, 3), {})


def test_feature_term_builds_connector_and_learns():
    term = terms.Feature(student_tap="a", teacher_tap="b", connector="linear")
    s, t = torch.randn(8, 4), torch.randn(8, 6)
    loss0 = term(s, t)
    assert isinstance(term.connector, torch.nn.Linear) and term.connector.in_features == 4
    opt = torch.optim.SGD(term.parameters(), lr=0.1)
    for _ in range(50):
        opt.zero_grad()
        term(s, t).backward()
        opt.step()
    assert term(s, t).item() < loss0.item()
    cos = terms.Feature(student_tap="a", teacher_tap="b", connector=None, metric="cosine")
    assert cos(t, t).item() == pytest.approx(0.0, abs=1e-6)


def test_shape_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match=r"student output shape \(2, 3\) does not match teacher output shape \(2, 4\)"):
        terms.KL()(torch.zeros(2, 3), torch.zeros(2, 4))


@pytest.mark.parametrize("sched, values", [
    (schedules.Constant(0.5), [0.5, 0.5, 0.5]),
    (schedules.Linear(1.0, 0.0), [1.0, 0.5, 0.0]),
    (schedules.Linear(0.0, 2.0), [0.0, 1.0, 2.0]),
    (schedules.Cosine(1.0, 0.0), [1.0, 0.5, 0.0]),
    (schedules.Step([1.0, 0.1], [0.5]), [1.0, 0.1, 0.1]),
    (schedules.Exponential(1.0, 0.01), [1.0, 0.1, 0.01]),
])
def test_schedules(sched, values):
    got = [sched(p) for p in (0.0, 0.5, 1.0)]
    assert got == pytest.approx(values)


def test_schedule_errors():
    with pytest.raises(ValueError):
        schedules.Step([1.0], [0.5])
    with pytest.raises(ValueError):
        schedules.Exponential(0.0, 1.0)
    with pytest.raises(UserError):
        terms.KL(weight="high")
