"""Deep schedulers (tasks/scheduler): the 1LDS actor's branch layout, masked greedy decoding, candidate
permutation augmentation (rewards kept, actions permuted consistently) and an exported actor deciding
exactly as PyTorch does on recorded states."""
from pathlib import Path

import numpy as np
import pytest
import torch

from compress.rl.policies import Branches, greedy
from envs.scheduler.env import SchedulerEnv
from tasks.scheduler.augment import PermutedCandidates, permute_1lds, permute_2lds, to_env_actions
from tasks.scheduler.evaluate import ActorPolicy, masked_greedy
from tasks.scheduler.models import Actor1LDS, Actor2LDS, Critic1LDS
from tasks.scheduler.shared import Shared1LDS

UE_PER_CELL = 12      # the small drop of tests/test_sched_env.py


def test_1lds_actor_sizes_and_branch_layout():
    a = Actor1LDS()
    assert a.in_features == 10 * (5 + 2 * 18) == 410 and a.out_features == 18 * 11 == 198
    assert [m.out_features for m in a.modules() if isinstance(m, torch.nn.Linear)] == [32, 32, 198]
    assert a.branches == [11] * 18
    assert Critic1LDS(n_quantiles=16).out_features == 198 * 16
    assert Actor2LDS().in_features == 81 and Actor2LDS().out_features == 11
    assert [m.out_features for m in Actor1LDS(width=8, depth=3).modules() if isinstance(m, torch.nn.Linear)] == [8, 8, 8, 198]
    # flat output entry m * 11 + u is candidate u on RBG m: the reshape compress.rl's Branches uses
    last = [m for m in a.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.zero_()
        last.bias[5 * 11 + 3] = 1.0                    # RBG 5, candidate 3
        last.bias[17 * 11 + 10] = 2.0                  # RBG 17, no allocation
    out = a(torch.zeros(2, 410))
    view = Branches(a.branches).view(out)
    assert view.shape == (2, 18, 11)
    assert torch.equal(out.reshape(2, 18, 11), view)
    assert view[0, 5, 3] == 1.0 and view[1, 17, 10] == 2.0 and view.abs().sum() == 2 * 3.0


def test_masked_greedy_picks_best_valid_choice_per_rbg():
    logits = np.array([[5.0, 1.0, 0.5, 9.0, 2.0, 3.0]])            # 2 RBGs x (2 candidates + none)
    mask = np.array([[False, True, True, True, True, False]])
    # RBG 0: candidate 0 (5.0) is masked -> candidate 1 (1.0) beats none (0.5)
    # RBG 1: candidate 0 (9.0) valid -> 0; candidate 2 = none
    assert masked_greedy(logits, mask, 3).tolist() == [[1, 0]]
    assert masked_greedy(logits, np.ones_like(mask), 3).tolist() == [[0, 0]]
    br = Branches([3, 3])                                            # same decision as compress.rl's greedy
    assert greedy(torch.tensor(logits), br, torch.tensor(mask)).tolist() == [[1, 0]]


def test_actor_policy_only_takes_valid_actions_in_the_env():
    env = SchedulerEnv(setup="training", n_ue_per_cell=UE_PER_CELL, seed=5)
    pol = ActorPolicy(Actor1LDS())
    obs, info = env.reset(seed=5)
    for _ in range(env.n_stages):
        a = pol(obs, info)
        assert a.shape == (21, 18)
        m = info["action_mask"].reshape(21, 18, 11)
        assert np.take_along_axis(m, a[..., None], -1).all()
        obs, r, _, _, info = env.step(a)
        assert r.shape == (21, 18) and np.isfinite(r).all()


def test_permute_1lds_moves_segments_masks_and_actions_together():
    rng = np.random.default_rng(0)
    E, U, M = 3, 10, 18
    obs = rng.random((E, U * (5 + 2 * M))).astype(np.float32)
    mask = rng.random((E, M * (U + 1))) > 0.3
    perm = np.stack([rng.permutation(U) for _ in range(E)])
    po, pm = permute_1lds(obs, mask, perm)
    seg, pseg = obs.reshape(E, U, -1), po.reshape(E, U, -1)
    m, pmm = mask.reshape(E, M, U + 1), pm.reshape(E, M, U + 1)
    for e in range(E):
        for j in range(U):
            assert np.array_equal(pseg[e, j], seg[e, perm[e, j]])
            assert np.array_equal(pmm[e, :, j], m[e, :, perm[e, j]])
        assert np.array_equal(pmm[e, :, U], m[e, :, U])               # "no allocation" is not permuted
    act = rng.integers(0, U + 1, (E, M))
    env_act = to_env_actions(act, perm)
    expect = np.where(act < U, np.take_along_axis(perm, np.minimum(act, U - 1), 1), U)
    assert np.array_equal(env_act, expect)
    # a choice valid in the permuted view is valid for the env, and the other way round
    assert np.array_equal(np.take_along_axis(pmm, act[..., None], -1), np.take_along_axis(m, env_act[..., None], -1))


def test_permute_2lds_keeps_the_rbg_entry():
    E, U = 2, 10
    obs = np.arange(E * (8 * U + 1), dtype=np.float32).reshape(E, -1)
    mask = np.ones((E, U + 1), bool)
    mask[:, 2] = False
    perm = np.tile(np.roll(np.arange(U), 1), (E, 1))                # slot j shows candidate j - 1
    po, pm = permute_2lds(obs, mask, perm)
    assert np.array_equal(po[:, -1], obs[:, -1])
    assert np.array_equal(po[:, 8:16], obs[:, 0:8]) and np.array_equal(po[:, 0:8], obs[:, 72:80])
    assert not pm[0, 3] and pm[0, 2] and pm[0, U]
    assert to_env_actions(np.array([3, U]), perm).tolist() == [2, U]


def test_permuted_env_gives_the_same_rewards_and_allocation_as_the_plain_env():
    """The same decisions through the wrapper (slots mapped by its permutation) and straight to the env:
    identical per-RBG rewards at every stage, identical realised TTI bits."""
    plain = SchedulerEnv(setup="training", n_ue_per_cell=UE_PER_CELL, seed=5)
    wrapped = PermutedCandidates(SchedulerEnv(setup="training", n_ue_per_cell=UE_PER_CELL, seed=5), seed=3)
    o1, i1 = plain.reset(seed=5)
    o2, i2 = wrapped.reset(seed=5)
    rng = np.random.default_rng(1)
    moved = False
    for _ in range(2 * plain.n_stages):
        m = i1["action_mask"].reshape(21, 18, 11)
        a_env = (rng.random(m.shape) * m).argmax(-1)                 # a random valid choice per RBG
        inv = np.argsort(wrapped.perm, axis=1)                       # candidate -> slot
        a_slot = np.where(a_env < 10, np.take_along_axis(inv, np.minimum(a_env, 9), 1), 10)
        assert np.array_equal(to_env_actions(a_slot, wrapped.perm), a_env)
        moved |= not np.array_equal(a_slot, a_env)
        o2p, _ = permute_1lds(o1, i1["action_mask"], wrapped.perm)
        assert np.array_equal(o2, o2p)                                # the wrapper shows the permuted state
        o1, r1, _, _, i1 = plain.step(a_env)
        o2, r2, _, _, i2 = wrapped.step(a_slot)
        assert np.array_equal(r1, r2)
        if i1["tti_end"]:
            assert i1["tti_stats"]["bits"] == i2["tti_stats"]["bits"]
    assert moved


@pytest.mark.parametrize("runtime", ["onnx", "c"])
def test_exported_actor_decides_as_pytorch_on_recorded_states(tmp_path, runtime):
    torch.manual_seed(0)
    actor = Actor1LDS().eval()
    env = SchedulerEnv(setup="training", n_ue_per_cell=UE_PER_CELL, seed=5)
    pol = ActorPolicy(actor)
    obs, info = env.reset(seed=5)
    states, masks = [], []
    for _ in range(env.n_stages):
        states.append(obs)
        masks.append(info["action_mask"])
        obs, _, _, _, info = env.step(pol(obs, info))
    if runtime == "onnx":
        from compress.export import export_onnx
        path = export_onnx(actor, torch.zeros(1, 410), tmp_path / "actor.onnx")
    else:
        from compress.export import export_c
        path = export_c(actor, tmp_path / "c", name="actor")["c"]
    deployed = ActorPolicy(path)
    n_rbg_info = {"scores": {"dpf": np.zeros((21, 18, 10))}}
    for s, m in zip(states, masks):
        a_torch = pol(s, {"action_mask": m, **n_rbg_info})
        a_dep = deployed(s, {"action_mask": m, **n_rbg_info})
        assert np.array_equal(a_torch, a_dep)
        with torch.no_grad():
            ref = actor(torch.as_tensor(s)).numpy()
        np.testing.assert_allclose(deployed.fn(s), ref, rtol=1e-4, atol=1e-5)


def test_with_expert_reports_pf_greedy_decisions_in_the_agents_slot_order():
    from envs.scheduler import PFGreedySDS
    from tasks.scheduler.expert import WithExpert

    env = WithExpert(PermutedCandidates(SchedulerEnv(setup="training", n_ue_per_cell=UE_PER_CELL, seed=5), seed=2))
    obs, info = env.reset(seed=5)
    inner = env.env
    for _ in range(3):
        exp = info["expert_action"]
        assert exp.shape == (21, 18)
        assert np.array_equal(exp, PFGreedySDS()(obs, info))                  # on the permuted scores
        m = info["action_mask"].reshape(21, 18, 11)
        assert np.take_along_axis(m, exp[..., None], -1).all()
        # mapped back through the permutation it is PF greedy on the env's own candidate order (up to exact
        # ties of the PF metric, common in the first TTIs: R_u starts from the discrete wideband CQI rate)
        sc = inner.env.scores
        plain = PFGreedySDS()(None, {"scores": sc, "layer": info["layer"]})
        back = to_env_actions(exp, inner.perm)
        assert np.array_equal(back == 10, plain == 10)
        pick = lambda a: np.take_along_axis(sc["dpf"], np.minimum(a, 9)[..., None], -1)[..., 0]
        assert np.array_equal(np.where(plain < 10, pick(back), 0), np.where(plain < 10, pick(plain), 0))
        assert (back != plain).mean() < 0.5
        obs, r, _, _, info = env.step(exp)


def test_shared_1lds_layout_and_what_each_output_reads():
    from tasks.scheduler.shared import Shared1LDS
    torch.manual_seed(0)
    net = Shared1LDS(width=16).eval()
    assert net.branches == [11] * 18
    assert Shared1LDS(width=8, n_out=16)(torch.zeros(2, 410)).shape == (2, 198 * 16)
    rng = np.random.default_rng(1)
    seg = rng.random((1, 10, 41)).astype(np.float32)
    seg[0, 9] = 0.0                                                    # an empty candidate slot
    x = torch.as_tensor(seg.reshape(1, -1))
    with torch.no_grad():
        out = net(x).reshape(18, 11)
        # candidate 2's sub-band CQI on RBG 7 moves only RBG 7's outputs (its own pair, the RBG's max g^
        # context and its "no allocation"), nothing on another RBG
        seg2 = seg.copy()
        seg2[0, 2, 5 + 7] = 0.01
        out2 = net(torch.as_tensor(seg2.reshape(1, -1))).reshape(18, 11)
        assert torch.equal(out2[:7], out[:7]) and torch.equal(out2[8:], out[8:]) and out2[7, 2] != out[7, 2]
        # the same MLP on every RBG: identical candidate features on two RBGs give identical outputs
        seg3 = seg.copy()
        seg3[0, :, 5 + 4], seg3[0, :, 23 + 4] = seg3[0, :, 5 + 11], seg3[0, :, 23 + 11]
        out3 = net(torch.as_tensor(seg3.reshape(1, -1))).reshape(18, 11)
        assert torch.allclose(out3[4], out3[11])
    with pytest.raises(Exception, match="410"):
        net(torch.zeros(1, 81))


def test_shared_1lds_onnx_decides_as_pytorch(tmp_path):
    from compress.export import export_onnx
    from tasks.scheduler.shared import Shared1LDS
    torch.manual_seed(0)
    actor = Shared1LDS(width=16).eval()
    x = torch.rand(6, 410)
    x[:, 9 * 41:] = 0.0
    path = export_onnx(actor, torch.zeros(1, 410), tmp_path / "shared.onnx")
    deployed = ActorPolicy(path)
    with torch.no_grad():
        ref = actor(x).numpy()
    np.testing.assert_allclose(deployed.fn(x.numpy()), ref, rtol=1e-4, atol=1e-5)


def test_sched_rollout_data_rolls_the_env_it_is_given(monkeypatch):
    import tasks.scheduler.data as data
    from compress.errors import UserError
    seen = {}

    def fake(teacher, student, mix, n_tti, warmup_tti, seed, permute, **env_kw):
        seen.update(env_kw, seed=seed)
        return np.zeros((4, 410), np.float32), np.ones((4, 198), bool)

    monkeypatch.setattr(data, "rollout_states", fake)
    d = data.SchedRolloutData(rollout_tti=3, warmup_tti=1, seed=2, env={"setup": "evaluation", "traffic": "mixed"})
    d.teachers = [None]
    d.rollout(1, None, 0.5)
    assert seen == {"setup": "evaluation", "traffic": "mixed", "seed": 1002}
    with pytest.raises(UserError, match="env.seed"):
        data.SchedRolloutData(env={"seed": 3})



def test_sched_rollout_data_follows_the_mean_of_several_teachers(monkeypatch):
    """With several teachers (Distiller combine="mean") the rollouts follow the mean of their logits."""
    import tasks.scheduler.data as data
    from compress.errors import UserError
    seen = {}

    def fake(teacher, student, mix, n_tti, warmup_tti, seed, permute, **env_kw):
        seen["teacher"] = teacher
        return np.zeros((4, 410), np.float32), np.ones((4, 198), bool)

    monkeypatch.setattr(data, "rollout_states", fake)
    torch.manual_seed(0)
    nets = [Shared1LDS(width=8).eval() for _ in range(3)]
    d = data.SchedRolloutData(rollout_tti=3, warmup_tti=1)
    d.set_policies(nets, None)
    d.rollout(0, None, 0.0)
    x = torch.randn(6, 410)
    with torch.no_grad():
        assert torch.allclose(seen["teacher"](x), sum(n(x) for n in nets) / 3, atol=1e-6)
    d.set_policies(nets[:1], None)
    d.rollout(0, None, 0.0)
    assert seen["teacher"] is nets[0]
    with pytest.raises(UserError, match="has none"):
        d.set_policies([], None)

def _recorded_states(n_tti: int = 2):
    env = SchedulerEnv(setup="evaluation", n_drops=1, seed=7)
    obs, info = env.reset(seed=7)
    states, masks = [], []
    rng = np.random.default_rng(0)
    for _ in range(n_tti * env.n_stages):
        states.append(obs)
        masks.append(info["action_mask"])
        logits = rng.random((len(obs), 198)).astype(np.float32)
        obs, _, _, _, info = env.step(masked_greedy(logits, info["action_mask"], 11))
    return np.concatenate(states), np.concatenate(masks)


@pytest.mark.parametrize("depth,n_out", [(2, 1), (1, 3)])
def test_shared_1lds_c_export_equals_pytorch_fp32_and_int8(tmp_path, depth, n_out):
    """The C of a Shared1LDS (fp32; int8 of its QAT model) gives PyTorch's outputs and greedy decisions
    on recorded states of the evaluation set-up (present and absent candidates) and on an all-empty state."""
    import copy

    from compress.export import export_all
    from compress.export.runner import load_artifact
    from compress.quant import calibrate, prepare_qat
    from tasks.scheduler.shared import Shared1LDS
    torch.manual_seed(0)
    x, masks = _recorded_states()
    x = np.concatenate([x, np.zeros((1, 410), np.float32)])
    absent = np.abs(x.reshape(len(x), 10, 41)).sum(-1) == 0
    assert absent.any() and (~absent).any()
    net = Shared1LDS(width=8, depth=depth, n_out=n_out).eval()
    qnet = prepare_qat(copy.deepcopy(net)).eval()
    calibrate(qnet, [torch.as_tensor(x[:200])])
    for model, fmt in ((net, "c"), (qnet, "c-int8")):
        path = export_all(model, tmp_path / fmt, torch.as_tensor(x[:1]), formats=[fmt])[fmt]
        got = load_artifact(path)(x)
        with torch.no_grad():
            ref = model(torch.as_tensor(x)).numpy()
        assert got.shape == ref.shape == (len(x), 198 * n_out)
        if fmt == "c":
            np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)
        else:   # same integers; float rounding may move an activation by one quantization step
            assert np.abs(got - ref).max() < 0.02 * np.abs(ref).max()
            assert np.mean(np.abs(got - ref) < 1e-5) > 0.95
        if n_out == 1:
            dec = masked_greedy(got[:-1], masks, 11)
            assert np.mean(dec == masked_greedy(ref[:-1], masks, 11)) > 0.999


def test_shared_1lds_c_source_is_a_plain_mlp_export_for_export_c(tmp_path):
    """export_c takes a module's own c_source: header and harness as for a layer chain."""
    from compress.export import export_c
    from compress.export.c_export import read_io_sizes
    from tasks.scheduler.shared import Shared1LDS
    files = export_c(Shared1LDS(width=8).eval(), tmp_path, name="sched")
    assert read_io_sizes(files["h"], "sched") == (410, 198)
    assert "sched_forward" in files["c"].read_text() and "Shared1LDS" in files["h"].read_text()


def test_shared_1lds_c_portable_path_equals_the_simd_path(tmp_path):
    """Compiled without -march (no AVX-512: the portable 16-lane loops) the exported C gives the same
    outputs as the default build, fp32 and int8."""
    import copy
    import subprocess

    from compress.export import compile_c, export_c
    from compress.quant import calibrate, prepare_qat
    from tasks.scheduler.shared import Shared1LDS
    torch.manual_seed(1)
    x, _ = _recorded_states(1)
    net = Shared1LDS(width=8).eval()
    qnet = prepare_qat(copy.deepcopy(net)).eval()
    calibrate(qnet, [torch.as_tensor(x)])
    for model, int8 in ((net, False), (qnet, True)):
        files = export_c(model, tmp_path / str(int8), int8=int8)
        outs = []
        for flags in (("-O3", "-march=native"), ("-O2",)):
            exe = compile_c(files, tmp_path / f"h{int8}{len(flags)}", flags=flags)
            res = subprocess.run([str(exe)], input=x.astype(np.float32).tobytes(), capture_output=True, check=True)
            outs.append(np.frombuffer(res.stdout, np.float32).reshape(len(x), 198))
        with torch.no_grad():
            ref = model(torch.as_tensor(x)).numpy()
        for out in outs:
            assert np.abs(out - ref).max() < (0.02 * np.abs(ref).max() if int8 else 1e-5)
        assert np.mean(np.abs(outs[0] - outs[1]) < 1e-5) > 0.99


def test_compress_export_gives_the_rollout_data_module_its_policies(tmp_path, monkeypatch):
    """``python -m compress export`` on a DAgger recipe: the data module is handed the recipe's teacher and
    the trained student (the teacher's epoch-0 rollout calibrates int8; it used to fail for want of
    policies), and the int8 C of the shared student is written."""
    import shutil

    import tasks.scheduler.data as data
    from compress.cli import main
    seen = []

    def fake(teacher, student, mix, n_tti, warmup_tti, seed, permute, **env_kw):
        seen.append((type(teacher).__name__, type(student).__name__))
        rng = np.random.default_rng(seed)
        return rng.random((64, 410)).astype(np.float32), np.ones((64, 198), bool)

    monkeypatch.setattr(data, "rollout_states", fake)
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    run = tmp_path / "run"
    over = [f"--run_dir={run}", "--model.distiller.init_args.teachers.dsacd.class_path=tasks.scheduler.Shared1LDS",
            "--model.distiller.init_args.teachers.dsacd.init_args={width: 8}"]
    assert main(["fit", "recipes/sched_1lds_distill.yaml", *over, "--trainer.max_epochs=1",
                 "--data.init_args.batch_size=16"]) == 0
    shutil.rmtree(run / "export")
    seen.clear()
    assert main(["export", "recipes/sched_1lds_distill.yaml", *over, "--trainer.max_epochs=1",
                 "--data.init_args.batch_size=16"]) == 0
    assert seen and seen[0][0] == "Shared1LDS"                 # epoch 0: the teacher rolls out
    assert "Shared1LDS" in (run / "export" / "c_int8" / "student.h").read_text()


@pytest.mark.parametrize("n_cand,n_rbg", [(20, 40), (40, 5)])
def test_shared_1lds_c_export_other_sizes(tmp_path, n_cand, n_rbg):
    """More than 16 candidates or RBGs: the C's per-lane table lookups switch to a two-register permute
    (up to 32) or a gather (above); outputs still equal PyTorch's (fp32) and the fake-quant model's (int8)."""
    import copy

    from compress.export import export_c
    from compress.export.runner import load_artifact
    from compress.quant import calibrate, prepare_qat
    from tasks.scheduler.shared import Shared1LDS
    torch.manual_seed(0)
    net = Shared1LDS(n_cand=n_cand, n_rbg=n_rbg, width=8).eval()
    x = torch.rand(32, net.in_features)
    x.view(32, n_cand, -1)[::3, -2:] = 0.0                       # absent candidates
    qnet = prepare_qat(copy.deepcopy(net)).eval()
    calibrate(qnet, [x])
    for model, int8 in ((net, False), (qnet, True)):
        got = load_artifact(export_c(model, tmp_path / str(int8), int8=int8)["c"])(x.numpy())
        with torch.no_grad():
            ref = model(x).numpy()
        if int8:
            assert np.mean(np.abs(got - ref) < 1e-5) > 0.99 and np.abs(got - ref).max() < 0.02 * np.abs(ref).max()
        else:
            np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)
