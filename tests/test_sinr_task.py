"""SINR adapter: students, the four training modes, the teacher cache, and the recipes."""
import math

import lightning.pytorch as pl
import pytest
import torch

from compress.cli import main as cli_main
from envs.interference import gaussian_ic, sum_rate
from tasks.sinr import (PowerGNN, PowerMLP, Reinforce, SINRDataModule, SINRModule, WMMSE, beta_schedule,
                        evaluate, wmmse)


def _trainer(epochs):
    return pl.Trainer(max_epochs=epochs, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False, accelerator="cpu", num_sanity_val_steps=0)


def test_students_shapes_ranges_and_errors():
    H = gaussian_ic(6, 5, seed=0)
    m = PowerMLP(6, pmax=2.0)
    p = m(H)
    assert p.shape == (5, 6) and (p >= 0).all() and (p <= 2.0).all()
    assert sum(x.numel() for x in m.parameters()) == 36 * 200 + 200 + 200 * 80 + 80 + 80 * 80 + 80 + 80 * 6 + 6
    with pytest.raises(ValueError, match="built for K=6"):
        m(gaussian_ic(7, 2))
    clip = PowerMLP(6, pmax=2.0, output="clip")
    with torch.no_grad():
        clip.net[-1].bias.fill_(5.0)             # saturate: clipped outputs hit pmax exactly
    assert torch.equal(clip(H), torch.full((5, 6), 2.0))
    with pytest.raises(ValueError, match="output"):
        PowerMLP(6, output="tanh")
    g = PowerGNN(hidden=8, layers=2)
    assert g(H).shape == (5, 6) and g(gaussian_ic(13, 2)).shape == (2, 13)
    with pytest.raises(ValueError, match="\\(B, K, K\\)"):
        g(torch.ones(2, 3, 4))


def test_mlp_binary_decision_in_eval_only():
    """decision='binary': eval outputs are exactly {0, pmax} (on iff output >= pmax/2, top user always on);
    training mode keeps the relaxed sigmoid output; 'soft' (default) is unchanged."""
    torch.manual_seed(0)
    H = gaussian_ic(4, 3, seed=2)
    m = PowerMLP(4, pmax=2.0, decision="binary")
    with torch.no_grad():
        m.net[-1].weight.zero_()
        m.net[-1].bias.copy_(torch.tensor([1.0, -0.5, 0.0, -2.0]))   # sigmoid: .73, .38, .5, .12
    assert torch.allclose(m.train()(H), 2.0 * torch.sigmoid(torch.tensor([1.0, -0.5, 0.0, -2.0])).expand(3, 4))
    assert torch.equal(m.eval()(H), torch.tensor([[2.0, 0.0, 2.0, 0.0]]).expand(3, 4))
    with torch.no_grad():
        m.net[-1].bias.copy_(torch.tensor([-1.0, -0.5, -3.0, -2.0]))  # all below 1/2: only user 1 (largest) on
    assert torch.equal(m(H), torch.tensor([[0.0, 2.0, 0.0, 0.0]]).expand(3, 4))
    with pytest.raises(ValueError, match="decision"):
        PowerMLP(4, decision="rounded")


def test_supervised_bce_loss_matches_hand_computed():
    """supervised_loss='bce': BCE(p/pmax, p_teacher/pmax), by hand: -mean(y log s + (1-y) log(1-s))."""
    torch.manual_seed(0)
    K = 5
    H = gaussian_ic(K, 16, seed=4)
    m = SINRModule(PowerMLP(K, pmax=2.0), mode="supervised", supervised_loss="bce", pmax=2.0,
                   teacher=WMMSE(pmax=2.0), cache=False)
    out = m.student(H)
    loss, _ = m.compute_loss({"x": H, "index": torch.arange(16)}, out)
    s, y = out / 2.0, wmmse(H, pmax=2.0) / 2.0
    ref = -(y * s.log() + (1 - y) * (1 - s).log()).mean()
    assert loss.item() == pytest.approx(ref.item(), rel=1e-5)
    with pytest.raises(ValueError, match="supervised_loss"):
        SINRModule(PowerMLP(K), mode="supervised", supervised_loss="hinge")


@pytest.mark.parametrize("neighbors", [None, 3])
def test_gnn_is_permutation_equivariant(neighbors):
    torch.manual_seed(0)
    g = PowerGNN(hidden=8, layers=2, neighbors=neighbors)
    H = gaussian_ic(7, 4, seed=1)
    perm = torch.randperm(7)
    Hp = H[:, perm][:, :, perm]                  # relabel the users
    assert torch.allclose(g(Hp), g(H)[:, perm], atol=1e-6)


def test_beta_schedules():
    assert beta_schedule(2.0, "fixed")(0.7) == 2.0
    dec, inc = beta_schedule(2.0, "decreasing"), beta_schedule(2.0, "increasing")
    assert dec(0.0) == 2.0 and dec(1.0) == 0.0 and dec(0.25) == pytest.approx(1.5)
    assert inc(0.0) == 0.0 and inc(1.0) == 2.0
    with pytest.raises(ValueError, match="beta_schedule"):
        beta_schedule(1.0, "sideways")
    with pytest.raises(ValueError, match="mode"):
        SINRModule(PowerMLP(4), mode="magic")


def test_ad_loss_is_task_plus_beta_mse():
    """AD loss = -sum_rate/K + beta * MSE(p, p_WMMSE), with beta following its schedule."""
    torch.manual_seed(0)
    K = 5
    H = gaussian_ic(K, 16, seed=3)
    m = SINRModule(PowerMLP(K), mode="ad", beta=0.5, beta_schedule="decreasing", cache=False)
    out = m.student(H)
    loss, logs = m.compute_loss({"x": H, "index": torch.arange(16)}, out)
    task = -sum_rate(H, out).mean() / K
    mse = ((out - wmmse(H)) ** 2).mean()
    assert loss.item() == pytest.approx((task + 0.5 * mse).item(), rel=1e-5)   # progress 0: beta = 0.5
    sup = SINRModule(PowerMLP(K), mode="supervised", cache=False)
    loss_s, _ = sup.compute_loss({"x": H, "index": torch.arange(16)}, out)
    assert loss_s.item() == pytest.approx(mse.item(), rel=1e-5)
    uns = SINRModule(PowerMLP(K), mode="unsupervised")
    loss_u, _ = uns.compute_loss({"x": H}, out)
    assert loss_u.item() == pytest.approx(task.item(), rel=1e-6)
    assert uns.distiller.teacher_names == []


def test_reinforce_gradient_points_uphill():
    """No interference: more power always means more rate, so the policy gradient must raise every mean."""
    H = torch.eye(3).repeat(64, 1, 1) * 2.0
    mu = torch.full((64, 3), 0.5, requires_grad=True)
    torch.manual_seed(0)
    Reinforce(sigma=0.1, samples=16)(mu, {"x": H}).backward()
    # E[grad] = -(1/B) d r / d mu_k with r = mean_k log2(1 + 4 p_k): 4 / ((1 + 2) ln 2) / 3 = 0.641
    est = mu.grad.sum(0)                          # times B / B: sum over the batch
    assert (est < 0).all()
    assert est.mean().item() == pytest.approx(-4 / (3 * math.log(2)) / 3, rel=0.15)


def test_supervised_training_learns_wmmse_and_caches_teacher(tmp_path):
    calls = []

    class CountingWMMSE(WMMSE):
        def forward(self, H):
            calls.append(H.shape[0])
            return super().forward(H)

    pl.seed_everything(0, verbose=False)
    K = 4
    dm = SINRDataModule(K=K, n_train=3000, n_val=500, batch_size=100, seed=5)
    module = SINRModule(PowerMLP(K), mode="supervised", teacher=CountingWMMSE(), lr=3e-3,
                        cache=str(tmp_path / "cache.pt"))
    _trainer(4).fit(module, dm)
    # the teacher ran once over the training set (setup's dry-run batch + the prefill), never per step
    assert sum(calls) <= 3000 + 100 and len(calls) <= 3
    assert (tmp_path / "cache.pt").is_file()
    assert all(k.startswith("student.") for k in module.state_dict())
    x, ref = dm.val_set.x, dm.val_set.ref
    pct = 100 * evaluate(module.student, x) / float(sum_rate(x, ref).mean())
    full = 100 * float(sum_rate(x, torch.ones(x.shape[:2])).mean() / sum_rate(x, ref).mean())
    assert pct > full + 5                        # learned something beyond full power
    assert module.history and module.history[-1][1] == pytest.approx(pct, rel=1e-4)


def test_d2d_mode_runs_and_scores_binary():
    pl.seed_everything(0, verbose=False)
    dm = SINRDataModule(problem="d2d", K=12, n_train=60, n_val=20, batch_size=20, field=300.0)
    st = PowerGNN(hidden=8, layers=2, log_gains=True, gain_offset=4.0, gain_scale=3.0, neighbors=4)
    module = SINRModule(st, mode="ad", problem="d2d", cache=False)
    _trainer(1).fit(module, dm)
    assert len(module.history) == 1 and 0 <= module.history[0][1] < 200


def test_recipes_run_through_the_cli(tmp_path):
    for recipe, extra in (("recipes/sinr_mlp_ad.yaml", []), ("recipes/sinr_gnn_ad.yaml", []),
                          ("recipes/d2d_fplinq_ad.yaml", ["--data.init_args.n_train=40", "--data.init_args.K=10",
                                                          "--data.init_args.batch_size=20"])):
        args = ["fit", recipe, "--trainer.max_epochs=1", "--trainer.enable_progress_bar=false",
                "--data.init_args.n_train=300", "--data.init_args.n_val=50", f"--run_dir={tmp_path / recipe}",
                "--model.init_args.cache=false"]
        assert cli_main(args + extra) == 0, recipe
        assert (tmp_path / recipe / "student.pt").is_file()
    # a rerun with more epochs resumes from the last checkpoint (the change accepted explicitly)
    assert cli_main(args[:2] + ["--trainer.max_epochs=2"] + args[3:] + extra + ["--accept-changes"]) == 0


def test_reinforce_bernoulli_policy_for_d2d():
    """Isolated D2D links: every active link adds rate, so the policy gradient raises every on-probability,
    and by the score-function identity its mean matches the exact derivative of the expected rate."""
    G = torch.eye(4).repeat(32, 1, 1) * 100.0          # SINR 100 when on; zero interference
    q = torch.full((32, 4), 0.4, requires_grad=True)
    torch.manual_seed(0)
    Reinforce(problem="d2d", samples=64)(q, {"x": G}).backward()
    est = q.grad.sum(0)
    r_on = math.log2(1 + 100 / 10 ** 0.6) / 4          # per-link contribution to the mean rate
    assert (est < 0).all()
    assert est.mean().item() == pytest.approx(-r_on, rel=0.15)


@pytest.mark.parametrize("decision", ["soft", "binary"])
def test_power_mlp_exports_to_onnx_with_its_deployed_decision(tmp_path, decision):
    from compress.export import export_onnx, run_onnx
    torch.manual_seed(0)
    m = PowerMLP(6, hidden=(32, 16), pmax=2.0, in_mean=0.886, in_std=0.463, decision=decision)
    H = gaussian_ic(6, 64, seed=3)
    path = export_onnx(m, H[:4], tmp_path / f"power_{decision}.onnx")
    got = torch.from_numpy(run_onnx(path, H.numpy()))
    m.eval()
    with torch.no_grad():
        want = m(H)
    assert got.shape == (64, 6)
    if decision == "binary":   # on/off powers, at least one user on per channel, equal to PyTorch's decision
        assert set(got.unique().tolist()) == {0.0, 2.0} and (got.amax(-1) == 2.0).all()
        assert torch.equal(got, want)
    else:
        assert torch.allclose(got, want, atol=1e-5)
