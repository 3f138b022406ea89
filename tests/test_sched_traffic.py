"""Scheduler env: FTP Model 3 traffic, KPIs, and the settings' checks on bad input."""
import numpy as np
import pytest

from envs.errors import EnvError
from envs.scheduler import kpi
from envs.scheduler.config import SchedConfig
from envs.scheduler.traffic import INF_BITS, Traffic


def test_ftp3_offered_load_is_files_times_size_times_rate():
    S, lam, tti, n, T = 12_000.0, 500.0, 0.5e-3, 40, 20_000           # 1.5 kB at 500 files/s: 6 Mbit/s per UE
    tr = Traffic(np.ones(n, bool), S, lam, tti, np.random.default_rng(0))
    for _ in range(T):
        tr.arrive()
        tr.deliver(np.zeros(n))
    offered = tr.offered / (T * tti) / n
    # 400k files expected: Poisson relative std 0.16%; 1% tolerance
    assert offered == pytest.approx(S * lam, rel=0.01)
    assert tr.buffer().sum() == pytest.approx(tr.offered)               # nothing served: all still queued


def test_ftp3_upt_and_fifo_completion():
    tti = 1e-3
    tr = Traffic(np.array([True, False]), 1000.0, 0.0, tti, np.random.default_rng(0))
    tr.n_arrived[0] = 2                                                  # two files queued at t = 0 and 0.5 ms
    tr._arr[0, :2] = [0.0, 0.5e-3]
    tr.offered = 2000.0
    assert tr.buffer()[0] == 2000.0 and tr.buffer()[1] == INF_BITS      # FB UE: infinite buffer
    tr.deliver(np.array([600.0, 5.0]))                                   # t = 1 ms: file 0 not done
    tr.deliver(np.array([600.0, 5.0]))                                   # t = 2 ms: file 0 done (1200 >= 1000)
    tr.deliver(np.array([800.0, 5.0]))                                   # t = 3 ms: file 1 done (2000)
    ue, upt = tr.upt()
    assert ue.tolist() == [0, 0]
    np.testing.assert_allclose(upt, [1000.0 / 2e-3, 1000.0 / 2.5e-3])
    assert tr.buffer()[0] == 0.0


def test_ftp3_ring_grows_when_files_queue_up():
    tr = Traffic(np.ones(3, bool), 100.0, 4000.0, 1e-3, np.random.default_rng(1))   # 4 files per TTI, none served
    for _ in range(30):
        tr.arrive()
    assert tr._arr.shape[1] >= tr.n_arrived.max() > 16
    tr.deliver(np.array([250.0, 0.0, 0.0]))                               # UE 0 finishes its first 2 files
    assert tr.n_done.tolist() == [2, 0, 0]


def test_geomean_replaces_zeros_by_ones_and_summary():
    x = np.array([0.0, 4e6, 16e6])
    assert kpi.geomean(x) == pytest.approx((1.0 * 4e6 * 16e6) ** (1 / 3))
    s = kpi.summary(np.arange(1, 101) * 1e6)
    assert s["median"] == pytest.approx(50.5) and s["p5"] == pytest.approx(5.95)
    assert kpi.gains({"p5": 2.0, "median": 3.0, "geomean": 1.1}, {"p5": 1.0, "median": 3.0, "geomean": 1.0}) == \
        pytest.approx({"p5": 100.0, "median": 0.0, "geomean": 10.0})


@pytest.mark.parametrize("kw,key", [
    ({"traffic": "poisson"}, "traffic"),
    ({"max_layers": 0}, "max_layers"),
    ({"rbg_size": 8}, "rbg_size"),                 # 273 PRBs: the table says 16
    ({"n_prb": 18, "rbg_size": 16}, "rbg_size"),   # 18 PRBs: 2 or 4 (or the seed's 1)
    ({"ftp_files_per_s": -1.0}, "ftp_files_per_s"),
    ({"ftp_file_bytes": 0.0}, "ftp_file_bytes"),
    ({"design": "3lds"}, "design"),
    ({"reward": "sparse"}, "reward"),
    ({"csi_delay": 20}, "csi_delay"),          # must be below csi_period (20)
    ({"n_layers": 4}, "unknown setting"),
])
def test_bad_settings_are_one_clear_error(kw, key):
    with pytest.raises(EnvError, match=key) as e:          # EnvError: a ValueError the CLI prints as one line
        SchedConfig.preset("evaluation", **kw)
    assert "\n" not in str(e.value) and e.value.user_error


def test_presets_are_the_seeds_setups():
    tr, ev = SchedConfig.preset("training"), SchedConfig.preset("evaluation")
    assert (tr.n_prb, tr.rbg_size, tr.n_rbg, tr.max_layers, tr.n_ue_per_cell * 21, tr.traffic) == (18, 1, 18, 4, 420, "mixed")
    assert (ev.n_prb, ev.rbg_size, ev.n_rbg, ev.max_layers, ev.n_ue_per_cell * 21, ev.n_drops) == (273, 16, 18, 8, 210, 10)
    assert tr.ftp_file_bytes * tr.ftp_files_per_s == 750_000 and ev.ftp_file_bytes * ev.ftp_files_per_s == 1e7
    assert tr.drop.n_ue_per_cell == 20
    with pytest.raises(EnvError, match="setup"):
        SchedConfig.preset("testing")
