"""compress.rl losses and masked policies against hand-computed values (issue 13's acceptance list)."""
import math

import pytest
import torch

from compress.rl import Branches, MaskedCategorical
from compress.rl.losses import (double_dqn_target, expert_jsd, ppo_clip_loss, ppo_value_loss, q_taken,
                                quantile_huber_loss, quantile_midpoints, sac_actor_loss, sac_alpha_loss,
                                sac_soft_value, target_entropy)

LN2 = math.log(2.0)


# ------------------------------------------------------------------------------------- quantile Huber
def test_quantile_midpoints():
    assert quantile_midpoints(4).tolist() == [0.125, 0.375, 0.625, 0.875]


def test_quantile_huber_pairwise_hand_values():
    # N = 2 (tau_hat = 1/4, 3/4), one target 0.5: u = (0.5, -0.5), both in Huber's quadratic zone
    # rho_1 = |0.25 - 0| * 0.125 = 0.03125, rho_2 = |0.75 - 1| * 0.125 = 0.03125 -> sum 0.0625
    assert quantile_huber_loss(torch.tensor([[0.0, 1.0]]), torch.tensor([[0.5]])).item() == pytest.approx(0.0625)
    # linear zone (kappa = 1): u = 3 for both quantiles, L = 3 - 0.5 = 2.5 -> 0.25 * 2.5 + 0.75 * 2.5 = 2.5
    assert quantile_huber_loss(torch.zeros(1, 2), torch.tensor([[3.0]])).item() == pytest.approx(2.5)
    # N = 1 (tau_hat = 1/2) against two targets: u = (-2, 1): (0.5 * 1.5 + 0.5 * 0.5) / 2 = 0.5 (mean over j)
    assert quantile_huber_loss(torch.zeros(1, 1), torch.tensor([[-2.0, 1.0]])).item() == pytest.approx(0.5)
    # leading dims (batch, branch) are kept; the target gets no gradient
    pred = torch.zeros(3, 2, 4, requires_grad=True)
    tgt = torch.ones(3, 2, 1, requires_grad=True)
    out = quantile_huber_loss(pred, tgt)
    assert out.shape == (3, 2)
    out.sum().backward()
    assert tgt.grad is None and pred.grad is not None


def test_quantile_huber_fits_the_midpoint_quantiles():
    """Minimizing it over samples of U(0, 100) puts theta_i at the tau_hat_i quantiles, in increasing order
    (the seed's Eq. 11 sign would fit the 1 - tau quantiles: decreasing)."""
    torch.manual_seed(0)
    samples = torch.rand(1, 4000) * 100
    theta = torch.full((1, 4), 50.0, requires_grad=True)
    opt = torch.optim.Adam([theta], lr=1.0)
    for _ in range(600):
        opt.zero_grad()
        quantile_huber_loss(theta, samples).sum().backward()
        opt.step()
    assert theta.detach()[0].tolist() == pytest.approx([12.5, 37.5, 62.5, 87.5], abs=3.0)


# ------------------------------------------------------------------------------ masked categorical
def _branches_and_mask():
    br = Branches([3, 2])
    mask = torch.tensor([[True, True, False, True, False]])     # branch 1 has a single valid action
    logits = torch.tensor([[0.0, LN2, 5.0, 1.0, 7.0]], requires_grad=True)
    return br, mask, logits


def test_masked_log_softmax_values_and_no_nan():
    br, mask, logits = _branches_and_mask()
    d = MaskedCategorical(logits, br, mask)
    assert d.probs[0, 0].tolist() == pytest.approx([1 / 3, 2 / 3, 0.0])
    assert d.probs[0, 1].tolist() == pytest.approx([1.0, 0.0, 0.0])       # padded to width 3
    assert d.logp[0, 0, 2].item() == 0.0 and d.logp[0, 1, 1].item() == 0.0   # 0, not -inf, at invalid actions
    h0 = -(1 / 3 * math.log(1 / 3) + 2 / 3 * math.log(2 / 3))
    assert d.entropy()[0].tolist() == pytest.approx([h0, 0.0])
    loss = (d.probs * d.logp).sum() + d.log_prob(torch.tensor([[1, 0]])).sum()
    loss.backward()
    assert torch.isfinite(logits.grad).all()
    assert logits.grad[0, 2].item() == 0.0 and logits.grad[0, 4].item() == 0.0   # masked logits get no gradient
    # a branch with no valid action is taken as unmasked, not NaN
    empty = MaskedCategorical(torch.zeros(1, 5), br, torch.zeros(1, 5, dtype=torch.bool))
    assert torch.isfinite(empty.logp).all() and empty.probs[0, 1, :2].tolist() == pytest.approx([0.5, 0.5])


def test_masked_sampling_never_picks_invalid_actions():
    br = Branches([4, 4])
    mask = torch.tensor([[True, False, True, False, False, False, False, True]]).expand(2000, -1)
    d = MaskedCategorical(torch.randn(2000, 8), br, mask)
    a = d.sample(torch.Generator().manual_seed(0))
    assert set(a[:, 0].tolist()) == {0, 2} and set(a[:, 1].tolist()) == {3}


# ------------------------------------------------------------------------------------------ SAC
def test_sac_losses_with_masks_hand_values():
    br, mask, logits = _branches_and_mask()
    d = MaskedCategorical(logits, br, mask)
    q = br.view(torch.tensor([[1.0, 2.0, 100.0, 3.0, -50.0]]))   # invalid actions carry junk values
    alpha = 0.5
    h0 = -(1 / 3 * math.log(1 / 3) + 2 / 3 * math.log(2 / 3))
    # actor: branch 0: sum pi (a log pi - Q) = -a H0 - (1/3 + 4/3); branch 1: 1 * (0 - 3); mean over branches
    want = ((-alpha * h0 - 5 / 3) + (-3.0)) / 2
    assert sac_actor_loss(d.probs, d.logp, q, alpha).item() == pytest.approx(want)
    # soft value (critic target expectation): sum pi (Q - a log pi) = 5/3 + a H0 and 3
    assert sac_soft_value(d.probs, d.logp, q, alpha)[0].tolist() == pytest.approx([5 / 3 + alpha * h0, 3.0])
    # target entropy beta log|A(s)|: log 2 and 0 (one valid action)
    h = target_entropy(br, mask, 0.98, 1)
    assert h[0].tolist() == pytest.approx([0.98 * LN2, 0.0])
    # alpha loss: mean_b alpha (H_b - Hbar_b) = (0.5 (H0 - 0.98 ln 2) + 0) / 2; the one-action branch adds 0
    log_alpha = torch.tensor(math.log(alpha), requires_grad=True)
    la = sac_alpha_loss(log_alpha, d.probs, d.logp, h)
    assert la.item() == pytest.approx(alpha * (h0 - 0.98 * LN2) / 2, rel=1e-5)
    la.backward()
    assert log_alpha.grad.item() == pytest.approx(la.item())   # d/dlog_alpha of alpha * c is alpha * c
    assert log_alpha.grad.item() < 0                           # entropy below target: a step raises alpha
    # importance weights multiply each sample's term
    w = torch.tensor([0.5])
    assert sac_actor_loss(d.probs, d.logp, q, alpha, w).item() == pytest.approx(0.5 * want)


def test_double_dqn_target_per_branch_and_gamma_zero():
    br = Branches([2, 2])
    rew, done = torch.tensor([1.0, 2.0]), torch.tensor([0.0, 1.0])
    online = torch.tensor([[0.0, 1.0, 5.0, 0.0], [0.0, 1.0, 0.0, 1.0]])   # argmax: (1, 0) and (1, 1)
    target = torch.tensor([[10.0, 20.0, 30.0, 40.0], [1.0, 1.0, 1.0, 1.0]])
    y = double_dqn_target(rew, done, 0.5, br, target, online)
    assert y.tolist() == [[1 + 0.5 * 20, 1 + 0.5 * 30], [2.0, 2.0]]
    # classic max target and a next mask that forbids the best actions
    nm = torch.tensor([[True, False, True, True], [True, True, True, True]])
    assert double_dqn_target(rew, done, 0.5, br, target, next_mask=nm, double=False)[0].tolist() == [6.0, 21.0]
    # gamma 0: the reward itself, next state ignored
    assert double_dqn_target(rew, done, 0.0, br).tolist() == [[1.0, 1.0], [2.0, 2.0]]
    assert q_taken(target, torch.tensor([[1, 0], [0, 1]]), br).tolist() == [[20.0, 30.0], [1.0, 1.0]]


# ------------------------------------------------------------------------------------------ PPO
def test_ppo_clip_and_value_losses():
    logp_old = torch.log(torch.tensor([0.5, 0.5, 0.5]))
    logp = torch.log(torch.tensor([0.8, 0.8, 0.25]))          # ratios 1.6, 1.6, 0.5
    adv = torch.tensor([2.0, -2.0, 1.0])
    # -mean(min(r A, clip(r) A)) = -mean(min(3.2, 2.4), min(-3.2, -2.4), min(0.5, 0.8)) = -(2.4 - 3.2 + 0.5)/3
    assert ppo_clip_loss(logp, logp_old, adv, 0.2).item() == pytest.approx(0.1)
    v, ret, v_old = torch.tensor([1.0, 3.0]), torch.tensor([2.0, 0.0]), torch.tensor([0.0, 2.5])
    assert ppo_value_loss(v, ret).item() == pytest.approx(0.5 * (1 + 9) / 2)
    # clipped: v_old + clip(v - v_old, -0.2, 0.2) = (0.2, 2.7): max((1, 9), (3.24, 7.29)) -> (3.24, 9)
    assert ppo_value_loss(v, ret, v_old, 0.2).item() == pytest.approx(0.5 * (3.24 + 9) / 2)


# ------------------------------------------------------------------------------------------ JSD
def test_expert_jsd_bounds_and_hand_value():
    br = Branches([2])
    # pi = (1/2, 1/2), one-hot expert on action 0: m = (3/4, 1/4)
    kl_pm = 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)
    kl_em = math.log(1 / 0.75)
    want = 0.5 * (kl_pm + kl_em) / LN2
    assert expert_jsd(torch.zeros(1, 2), torch.tensor([[0]]), br).item() == pytest.approx(want)
    # identical -> 0; disjoint -> 1 bit (the upper bound); random pairs within [0, 1]
    assert expert_jsd(torch.tensor([[30.0, -30.0]]), torch.tensor([[0]]), br).item() == pytest.approx(0.0, abs=1e-6)
    assert expert_jsd(torch.tensor([[-30.0, 30.0]]), torch.tensor([[0]]), br).item() == pytest.approx(1.0, abs=1e-6)
    torch.manual_seed(0)
    br5 = Branches([5, 5, 5])
    mask = torch.rand(500, 15) < 0.6
    logits = (torch.randn(500, 15) * 3).requires_grad_()
    expert = torch.softmax(torch.randn(500, 15), -1)
    j = expert_jsd(logits, expert, br5, mask)
    assert (j >= -1e-7).all() and (j <= 1 + 1e-7).all()
    j.sum().backward()
    assert torch.isfinite(logits.grad).all()
    # expert probabilities are masked and renormalized per branch like the policy's
    same = expert_jsd(torch.log(expert), expert, br5, mask)
    assert same.abs().max().item() < 1e-5
