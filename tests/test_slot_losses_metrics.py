"""Multi-slot pieces of compress: per-slot top-k (torchmetrics), the focal loss and the sampled-pair relation
term, against hand computations."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from compress.distill import FocalLoss
from compress.distill.terms import PairRelation
from compress.distill.terms.pair_relation import sample_pairs
from compress.metrics import SlotTopK


def test_slot_topk_counts_per_slot():
    logits = torch.tensor([[[0.1, 0.9, 0.0], [0.5, 0.2, 0.3]],
                           [[0.7, 0.2, 0.1], [0.0, 0.1, 0.9]]])        # (B=2, S=2, C=3)
    target = torch.tensor([[1, 2], [1, -100]])
    m = SlotTopK(ks=(1, 2), slots=2)
    m.update(logits, target)
    out = m.compute()
    # slot 0: sample 0 top-1 hit, sample 1 target 1 is 2nd -> top1 1/2, top2 2/2; slot 1: one labelled sample,
    # target 2 is 2nd of [0.5, 0.2, 0.3] -> top1 0, top2 1
    assert out["top1"].tolist() == [0.5, 0.0] and out["top2"].tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match=r"must be \(B, 2, C\)"):
        m.update(torch.zeros(2, 3, 3), torch.zeros(2, 3, dtype=torch.long))


def test_focal_loss_matches_formula_on_slots():
    torch.manual_seed(0)
    logits, target = torch.randn(4, 3, 5), torch.randint(0, 5, (4, 3))
    ce = F.cross_entropy(logits.reshape(-1, 5), target.reshape(-1), reduction="none")
    pt = torch.exp(-ce)
    assert torch.allclose(FocalLoss(2.0)(logits, target), ((1 - pt) ** 2 * ce).mean())
    assert torch.allclose(FocalLoss(0.0)(logits, target), ce.mean())
    target[0, 0] = -100
    assert torch.allclose(FocalLoss(0.0)(logits, target), ce[1:].mean())
    with pytest.raises(ValueError, match="need targets of shape"):
        FocalLoss()(logits, target[:, :2])


def test_sampled_pairs_exclude_the_anchor():
    pairs = sample_pairs(6, 4)
    assert pairs.shape == (24, 2) and (pairs[:, 0] != pairs[:, 1]).all()
    assert torch.equal(pairs[:, 0], torch.arange(6).repeat_interleave(4))
    assert all(len(set(pairs[i * 4:(i + 1) * 4, 1].tolist())) == 4 for i in range(6))


def test_pair_relation_hand_value_and_invariances():
    s = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    t = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    term = PairRelation(pairs_per_anchor=2, distance_weight=1.0, angle_weight=0.0)
    # all 6 ordered pairs: student distances 1, 2, sqrt5 (each twice), teacher 1, 1, sqrt2
    ds = torch.tensor([1, 2, math.sqrt(5)] * 2)
    dt = torch.tensor([1, 1, math.sqrt(2)] * 2)
    expect = F.mse_loss(ds / ds.mean(), dt / dt.mean())
    assert torch.allclose(term(s, t), expect)
    cos = PairRelation(pairs_per_anchor=2, distance_weight=0.0, angle_weight=1.0)
    # cosine distances: pairs with the origin give 1 - 0 = 1 for both; (1,0)-(0,2): 1 - 0 = 1 for both
    assert torch.allclose(cos(s, t), torch.tensor(0.0))
    x = torch.randn(8, 5, 3)
    both = PairRelation(pairs_per_anchor=3, distance_weight=10.0, angle_weight=10.0, last_steps=4)
    assert both(3.0 * x, x).item() == pytest.approx(0.0, abs=1e-10)        # scale-free relations
    y = x.clone()
    y[:, 0] = torch.randn(8, 3)                                            # outside the last 4 steps
    assert both(y, x).item() == pytest.approx(0.0, abs=1e-10)
    assert both(torch.randn(8, 5, 3), x).item() > 0.01
    with pytest.raises(ValueError, match="at least 2 samples"):
        both(x[:1], x[:1])
