"""compress.rl algorithms on toy vector envs: they must learn, bootstrap through final observations, resume from
their checkpointed state, teach a distilled student, export, and reject bad input."""
import lightning.pytorch as pl
import numpy as np
import pytest
from compress.errors import UserError
import torch
from torch import nn

from compress.models import MLP
from compress.rl import DQN, DSACD, PPO, SACD, Branches, ReplayBuffer
from envs.bandit import MaskedBandit, UserPermutations


class ContextBandit:
    """N parallel one-step problems: obs = one-hot context k of 4; reward 1 iff action == (k + 1) % 4."""

    def __init__(self, n=64, seed=0):
        self.num_envs, self.rng = n, np.random.default_rng(seed)

    def _obs(self):
        self.k = self.rng.integers(0, 4, self.num_envs)
        return np.eye(4, dtype=np.float32)[self.k]

    def reset(self, seed=None):
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        return self._obs(), {}

    def step(self, a):
        r = (np.asarray(a) == (self.k + 1) % 4).astype(np.float64)
        return self._obs(), r, np.zeros(self.num_envs, bool), np.zeros(self.num_envs, bool), {}


class Chain:
    """Two-step episodes: step 0 (obs [1,0]) gives 0 reward for either action, but action 1 leads to a
    state (obs [0,1]) where action 0 pays 1; action 0 at step 0 leads to a dead state paying nothing.
    Needs gamma > 0: a myopic agent is indifferent at step 0. Terminates after 2 steps (same-step
    autoreset, the last obs in info["final_obs"])."""

    def __init__(self, n=64):
        self.num_envs = n

    def reset(self, seed=None):
        self.t = np.zeros(self.num_envs, int)
        self.good = np.zeros(self.num_envs, bool)
        return self._obs(), {}

    def _obs(self):
        o = np.zeros((self.num_envs, 3), np.float32)
        o[self.t == 0, 0] = 1
        o[(self.t == 1) & self.good, 1] = 1
        o[(self.t == 1) & ~self.good, 2] = 1
        return o

    def step(self, a):
        a = np.asarray(a)
        r = np.where((self.t == 1) & self.good & (a == 0), 1.0, 0.0)
        self.good = np.where(self.t == 0, a == 1, self.good)
        self.t = self.t + 1
        term = self.t >= 2
        final = self._obs()
        self.t[term] = 0
        obs = self._obs()
        return obs, r, term, np.zeros(self.num_envs, bool), {"final_obs": final, "_final_obs": term}


def _fit(module, steps, epochs=1):
    pl.seed_everything(0)
    module.steps_per_epoch = steps
    pl.Trainer(max_epochs=epochs, logger=False, enable_checkpointing=False, enable_progress_bar=False,
               enable_model_summary=False).fit(module)
    return module


B, K = 2, 3          # the tests' bandit: 2 blocks x 3 candidates (a random valid policy earns 73% of the optimum)
OD, NA = K * (1 + B), B * K


def small_bandit(n=16, per_branch_reward=True, seed=0):
    return MaskedBandit(n, n_branches=B, n_users=K, per_branch_reward=per_branch_reward, seed=seed)


def pct_optimal(module, seed=123, rounds=8):
    env = MaskedBandit(256, n_branches=B, n_users=K, seed=seed)
    obs, info = env.reset(seed=seed)
    got = best = 0.0
    for _ in range(rounds):
        best += info["optimal_reward"].sum()
        obs, r, _, _, info = env.step(module.act_greedy(obs, info["action_mask"]))
        got += r.sum()
    return got / best


def _bandit_nets(quantiles=1, value=False):
    return MLP(OD, NA, [64, 64]), MLP(OD, 1 if value else NA * quantiles, [64, 64])


SAC_ARGS = dict(gamma=0.0, actor_lr=1e-3, critic_lr=1e-3, alpha_lr=1e-3, batch_size=64, warmup_env_steps=10,
                target_entropy_beta=0.5)


# ----------------------------------------------------------------------------------------------- DQN
def test_dqn_learns_contextual_bandit():
    torch.manual_seed(0)
    q = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 4))
    m = _fit(DQN(ContextBandit(), q, gamma=0.0, lr=1e-2, batch_size=128, eps_decay_frac=0.3, seed=0), 200)
    assert m.act_greedy(np.eye(4, dtype=np.float32))[:, 0].tolist() == [1, 2, 3, 0]


def test_dqn_lr_decays_to_lr_end():
    q = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 4))
    m = DQN(ContextBandit(), q, gamma=0.0, lr=1e-2, lr_end=1e-3, batch_size=16, seed=0)
    pl.seed_everything(0)
    m.steps_per_epoch = 40
    trainer = pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False)
    trainer.fit(m)
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(1e-3)
    with pytest.raises(ValueError, match="lr_end"):
        DQN(ContextBandit(), q, lr=1e-3, lr_end=1e-2)


def test_dqn_bootstraps_through_final_obs():
    torch.manual_seed(0)
    q = nn.Sequential(nn.Linear(3, 32), nn.ReLU(), nn.Linear(32, 2))
    m = _fit(DQN(Chain(), q, gamma=0.9, lr=1e-2, batch_size=128, eps_decay_frac=0.3, tau=0.05, seed=0), 400)
    with torch.no_grad():
        qv = q(torch.eye(3))
    assert qv[0].argmax() == 1 and qv[1].argmax() == 0   # go to the good state, then collect
    assert qv[0, 1].item() == pytest.approx(0.9, abs=0.15)  # gamma * 1
    assert qv[1, 0].item() == pytest.approx(1.0, abs=0.15)
    # episode-ending transitions must store the final obs, not the next episode's start obs [1, 0, 0]
    d, n = m.buffer.data, m.buffer.size
    second = d["obs"][:n, 0] == 0
    assert (d["next_obs"][:n][second, 0] == 0).all()


def test_dqn_masked_multi_branch_bandit():
    torch.manual_seed(0)
    m = _fit(DQN(small_bandit(), _bandit_nets()[0], gamma=0.0, lr=1e-3, batch_size=64, eps_decay_frac=0.3,
                 loss="mse"), 300)
    assert m.buffer.data["mask"].shape[1:] == (NA,) and m.buffer.data["act"].shape[1:] == (B,)
    assert m.buffer.data["rew"].shape[1:] == (B,)          # per-branch rewards stored as such
    assert (m.buffer.data["rew"][: m.buffer.size] >= 0).all()   # exploration never took a masked action
    assert pct_optimal(m) > 0.95


# ------------------------------------------------------------------------------- SACD, DSACD, PPO
def test_sacd_learns_masked_bandit_with_gamma_zero():
    torch.manual_seed(0)
    actor, critic = _bandit_nets()
    m = _fit(SACD(small_bandit(), actor, critic, **SAC_ARGS), 300)
    assert pct_optimal(m) > 0.95
    assert m.alpha.item() < 1.0                           # the temperature adapted towards the entropy target


def test_dsacd_learns_masked_bandit_with_gamma_zero():
    torch.manual_seed(0)
    actor, critic = _bandit_nets(quantiles=8)
    m = _fit(DSACD(small_bandit(), actor, critic, n_quantiles=8, **SAC_ARGS), 300)
    assert pct_optimal(m) > 0.95
    # critics are distributional: quantiles of a taken action are ordered like tau_hat (low to high)
    obs = torch.as_tensor(m.buffer.data["obs"][:256])
    th = m.quantiles(m.critic1, obs)
    assert (th[..., -1] - th[..., 0] > 0).float().mean() > 0.9


def test_ppo_learns_masked_bandit():
    torch.manual_seed(0)
    actor, critic = _bandit_nets(value=True)
    m = _fit(PPO(small_bandit(per_branch_reward=False), actor, critic, rollout_steps=32, lr=1e-3, ent_coef=0.003), 20)
    assert pct_optimal(m) > 0.95


def test_ppo_expert_jsd_pulls_towards_the_expert():
    """With the PPO step switched off (lr ~ 0), the alternating JSD steps alone make the actor imitate the
    env's heuristic expert; with jsd_coef = 0 it does not."""
    def agreement(coef):
        torch.manual_seed(0)
        actor, critic = _bandit_nets(value=True)
        m = PPO(small_bandit(per_branch_reward=False), actor, critic, rollout_steps=8, lr=1e-12, jsd_lr=1e-2,
                update_epochs=1, anneal_lr=False, expert_info_key="expert_action", jsd_coef=coef)
        _fit(m, 30)
        env = MaskedBandit(256, n_branches=B, n_users=K, seed=7)
        obs, info = env.reset(seed=7)
        return (m.act_greedy(obs, info["action_mask"]) == info["expert_action"]).mean(), m

    with_jsd, m = agreement(1.0)
    without, _ = agreement(0.0)
    assert len(m.expert_buffer) == min(4000, 30 * 8 * 16)
    assert with_jsd > 0.9 and with_jsd > without + 0.3


def test_ppo_permutation_augmentation_keeps_advantages_and_recomputes_logp():
    torch.manual_seed(0)
    actor, critic = _bandit_nets(value=True)
    m = PPO(small_bandit(4, False), actor, critic, rollout_steps=4, augment=UserPermutations(B, K, n_perm=2))
    b = m.rollout()
    n = 4 * 4
    assert len(b["obs"]) == 3 * n
    for k in (1, 2):
        sl = slice(k * n, (k + 1) * n)
        assert torch.equal(b["adv"][sl], b["adv"][:n]) and torch.equal(b["ret"][sl], b["ret"][:n])
        # the permuted copy is the same decision: same value earned by the relabelled actions
        for row in range(n):
            w0, u0 = b["obs"][row].reshape(K, 1 + B)[:, 0], b["obs"][row].reshape(K, 1 + B)[:, 1:]
            wk, uk = b["obs"][k * n + row].reshape(K, 1 + B)[:, 0], b["obs"][k * n + row].reshape(K, 1 + B)[:, 1:]
            v0 = [w0[a] * u0[a, blk] for blk, a in enumerate(b["act"][row].tolist())]
            vk = [wk[a] * uk[a, blk] for blk, a in enumerate(b["act"][k * n + row].tolist())]
            assert torch.allclose(torch.stack(v0), torch.stack(vk))
        with torch.no_grad():
            from compress.rl import MaskedCategorical
            d = MaskedCategorical(actor(b["obs"][sl]), m.branches, b["mask"][sl])
            assert torch.allclose(d.log_prob(b["act"][sl]).sum(-1), b["logp"][sl], atol=1e-5)


# ---------------------------------------------------------------------------- teacher and export
def test_trained_actor_teaches_a_policy_term_student_and_exports(tmp_path):
    """A DSACD actor as the teacher of compress.distill's per-branch, masked Policy term, and its ONNX / C export."""
    from compress.distill import Distiller, terms
    from compress.export import compile_c, export_c, export_onnx, run_onnx

    torch.manual_seed(0)
    actor, critic = _bandit_nets(quantiles=4)
    teacher = _fit(DSACD(small_bandit(), actor, critic, n_quantiles=4, **SAC_ARGS), 200)
    env = MaskedBandit(512, n_branches=B, n_users=K, seed=3)
    obs, info = env.reset(seed=3)
    x, mask = torch.as_tensor(obs), torch.as_tensor(info["action_mask"])
    term = terms.Policy(kind="jsd", branches=[K] * B, mask_key="mask")
    d = Distiller(teacher.student, [term])
    student = MLP(OD, NA, [32])
    opt = torch.optim.Adam(student.parameters(), lr=3e-3)
    batch = {"x": x, "mask": mask}
    first = None
    for _ in range(300):
        loss, _ = d(batch, student(x))
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    br = Branches([K] * B)
    from compress.rl import greedy
    with torch.no_grad():
        agree = (greedy(student(x), br, mask) == greedy(teacher.student(x), br, mask)).float().mean().item()
    assert loss.item() < 0.2 * first and agree > 0.85
    # export: the deployed argmax of the ONNX and C artifacts equals the module's masked greedy actions
    onnx_path = export_onnx(teacher.student, x[:1], tmp_path / "actor.onnx")
    out = run_onnx(onnx_path, obs)
    assert (greedy(torch.as_tensor(out), br, mask).numpy() == teacher.act_greedy(obs, info["action_mask"])).all()
    import shutil
    import subprocess
    if shutil.which("gcc"):
        paths = export_c(teacher.student, tmp_path, name="actor")
        exe = compile_c(paths, tmp_path / "actor")
        res = subprocess.run([str(exe)], input=np.ascontiguousarray(obs).tobytes(), capture_output=True, check=True)
        c_out = np.frombuffer(res.stdout, np.float32).reshape(len(obs), NA)
        np.testing.assert_allclose(c_out, out, rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------------------------------ input
def test_bad_input():
    q = nn.Linear(4, 4)
    with pytest.raises(UserError, match="gymnasium vector API"):
        DQN(object(), q)
    with pytest.raises(ValueError, match="gamma"):
        DQN(ContextBandit(), q, gamma=1.0)
    with pytest.raises(ValueError, match="capacity"):
        ReplayBuffer(0)
    env = small_bandit(4)
    with pytest.raises(ValueError, match="DSACD critic outputs 6 values per sample; 6 actions x 16 quantiles"):
        DSACD(env, *_bandit_nets(), gamma=0.0).quantiles(_bandit_nets()[1], torch.zeros(2, OD))
    with pytest.raises(ValueError, match="PPO needs an env with same-step autoreset"):
        from compress.rl import GymVectorEnv
        e = GymVectorEnv("CartPole-v1", 2)
        e.metadata = {**e.metadata, "autoreset_mode": "NextStep"}
        PPO(e, MLP(4, 2), MLP(4, 1))
    with pytest.raises(ValueError, match="target_entropy_beta"):
        SACD(env, *_bandit_nets(), target_entropy_beta=2.0)
