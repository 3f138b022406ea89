"""Scheduler env, MU-MIMO: the incremental (Schur) candidate scores equal the direct ZF-loss formula, one UE
gets its SU rate, and the true SINR is the MRC formula."""
import numpy as np
import pytest

from envs import nr
from envs.scheduler import mumimo
from envs.scheduler.link import LinkTables

ALPHA = 0.1


@pytest.fixture(scope="module")
def tab():
    return LinkTables(nr.rbg_sizes(18, 1))


def _random_gram(rng, E, M, U, rank):
    """Gram of random unit-norm layer directions (the second layer of a rank-1 UE inactive)."""
    v = rng.standard_normal((E, M, 32, 2 * U)) + 1j * rng.standard_normal((E, M, 32, 2 * U))
    v /= np.linalg.norm(v, axis=2, keepdims=True)
    act = (np.arange(2)[None, None, :] < rank[:, :, None]).reshape(E, 2 * U)
    v = v * act[:, None, None, :]
    K = np.conj(np.swapaxes(v, 2, 3)) @ v
    d = np.arange(2 * U)
    K[..., d, d] = np.where(act[:, None, :], 1.0, 1.0)       # inactive layers: orthogonal unit dummies
    return K.astype(np.complex64), v, act


def _direct_sinr(K_set, su_w, n_layers):
    """SINR_l = gamma_u r_u / n / ((1 + alpha) [(K_S + alpha I)^-1]_ll) for the set's active layers."""
    q = np.real(np.diag(np.linalg.inv(K_set + ALPHA * np.eye(len(K_set)))))
    return su_w / n_layers / ((1 + ALPHA) * q)


def test_schur_scores_equal_direct_inverse(tab):
    rng = np.random.default_rng(0)
    E, M, U, L = 2, 3, 5, 3
    rank = rng.integers(1, 3, size=(E, U))
    K, v, act = _random_gram(rng, E, M, U, rank)
    su = rng.uniform(5, 200, size=(E, M, U))
    R = rng.uniform(1e6, 1e7, size=(E, U))
    sets = mumimo.RBGSets(K, su, rank, R, np.ones((E, U), bool), np.full(M, 1e5), L, ALPHA, tab.se_of_lin)
    chosen = [[] for _ in range(E * M)]
    for layer in range(L):
        ev = sets.evaluate(layer)
        # direct check of every candidate's own rate on every (cell, RBG)
        for e in range(E):
            for m in range(M):
                base = chosen[e * M + m]
                for c in range(U):
                    if c in base:
                        assert not ev["valid"][e, m, c]
                        continue
                    ues = base + [c]
                    idx = [2 * u + k for u in ues for k in range(rank[e, u])]
                    n = len(idx)
                    s = _direct_sinr(K[e, m][np.ix_(idx, idx)], np.repeat(su[e, m, ues] * rank[e, ues], rank[e, ues]), n)
                    want = tab.se_of_db(10 * np.log10(s[-rank[e, c]:])).sum() * 1e5
                    assert ev["rate"][e, m, c] == pytest.approx(want, rel=1e-4)
                    # and the PF-sum change: new set's sum of T/R minus the old set's
                    pf_new = sum(tab.se_of_db(10 * np.log10(s[i])) * 1e5 / R[e, ues[j]]
                                 for j, u in enumerate(ues) for i in [sum(rank[e, ues[:j]]) + k for k in range(rank[e, u])])
                    assert ev["dpf"][e, m, c] == pytest.approx(pf_new - sets.pf[e, m], rel=1e-3, abs=1e-6)
        pick = rng.integers(0, U + 1, size=(E, M))
        pick = np.where(ev["valid"][np.arange(E)[:, None], np.arange(M)[None, :], np.minimum(pick, U - 1)] | (pick == U),
                        pick, U)
        sets.commit(pick, ev)
        for e in range(E):
            for m in range(M):
                if pick[e, m] < U:
                    chosen[e * M + m].append(int(pick[e, m]))
    # the committed sets' estimates equal the direct formula too
    est = sets.estimated_sinr()
    for e in range(E):
        for m in range(M):
            ues = chosen[e * M + m]
            if not ues:
                assert (est[e, m] == 0).all()
                continue
            idx = [2 * u + k for u in ues for k in range(rank[e, u])]
            s = _direct_sinr(K[e, m][np.ix_(idx, idx)], np.repeat(su[e, m, ues] * rank[e, ues], rank[e, ues]), len(idx))
            got = est[e, m][est[e, m] > 0]
            np.testing.assert_allclose(np.sort(got), np.sort(s), rtol=1e-4)


def test_single_ue_estimate_is_its_su_rate(tab):
    """A UE alone on an RBG (orthonormal Type-I layers) gets exactly its SU SINR on each layer."""
    rng = np.random.default_rng(1)
    E, M, U = 1, 4, 3
    rank = np.array([[2, 1, 2]])
    K = np.zeros((E, M, 2 * U, 2 * U), np.complex64)
    K[..., np.arange(2 * U), np.arange(2 * U)] = 1.0                       # orthonormal layers of each UE
    su = rng.uniform(1, 1000, size=(E, M, U))
    sets = mumimo.RBGSets(K, su, rank, np.ones((E, U)), np.ones((E, U), bool), np.full(M, 1.0), 4, ALPHA, tab.se_of_lin)
    ev = sets.evaluate(0)
    want = tab.se_of_db(10 * np.log10(su)) * rank[:, None, :]
    np.testing.assert_allclose(ev["rate"], want, rtol=1e-5)
    sets.commit(np.zeros((E, M), np.int64), ev)
    est = sets.estimated_sinr()
    np.testing.assert_allclose(est[..., 0], su[..., 0], rtol=1e-5)
    np.testing.assert_allclose(est[..., 1], su[..., 0], rtol=1e-5)         # rank 2: both layers


def test_true_sinr_of_a_single_ue_is_the_mrc_formula():
    rng = np.random.default_rng(2)
    H = (rng.standard_normal((1, 4, 32)) + 1j * rng.standard_normal((1, 4, 32))).astype(np.complex64)
    g = rng.standard_normal((32, 2)) + 1j * rng.standard_normal((32, 2))
    g /= np.linalg.norm(g, axis=0)
    G = np.zeros((1, 32, 4), np.complex64)
    G[0, :, :2] = g
    p, n0 = 0.5, 0.3
    none = (np.zeros((1, 4, 0), np.complex64), np.zeros((1, 0, 32, 4), np.complex64), np.zeros((1, 0)))
    s = mumimo.true_sinr(H @ G, np.array([p]), *none, np.array([[0, 1]]), np.array([n0]))
    h1, h2 = H[0] @ g[:, 0], H[0] @ g[:, 1]
    e1, e2, c = np.vdot(h1, h1).real, np.vdot(h2, h2).real, abs(np.vdot(h1, h2)) ** 2
    want = [p * e1 / (p * c / e1 + n0), p * e2 / (p * c / e2 + n0)]
    np.testing.assert_allclose(s[0], want, rtol=1e-4)
    # one layer only (the rank-1 UE's second slot is an empty column): SINR = p ||H g||^2 / n0
    G[0, :, 1] = 0.0
    s1 = mumimo.true_sinr(H @ G, np.array([p]), *none, np.array([[0, -1]]), np.array([n0]))
    assert s1[0, 0] == pytest.approx(p * e1 / n0, rel=1e-4) and s1[0, 1] == 0.0


def test_true_sinr_counts_other_cells_through_their_precoders():
    rng = np.random.default_rng(3)
    c = lambda *s: (rng.standard_normal(s) + 1j * rng.standard_normal(s)).astype(np.complex64)
    H, Hi = c(1, 4, 32), c(1, 4, 64)                                        # 2 interfering cells side by side
    G = np.zeros((1, 32, 2), np.complex64)
    G[0, :, 0] = (H[0, 0].conj() / np.linalg.norm(H[0, 0]))
    Gi = c(1, 2, 32, 2)
    p, pi, n0 = 1.0, np.array([[0.7, 0.2]]), 0.1
    s = mumimo.true_sinr(H @ G, np.array([p]), Hi, Gi, pi, np.array([[0, -1]]), np.array([n0]))
    f = H[0] @ G[0, :, 0]
    interf = sum(pi[0, k] * np.sum(np.abs(f.conj() @ Hi[0, :, 32 * k:32 * (k + 1)] @ Gi[0, k]) ** 2) for k in range(2))
    fn = np.vdot(f, f).real
    assert s[0, 0] == pytest.approx(p * fn ** 2 / (interf + n0 * fn), rel=1e-4)
