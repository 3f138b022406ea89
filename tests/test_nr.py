"""3GPP TS 38.214 facts: table rows spot-checked against the standard, TBS computed by hand."""
import numpy as np
import pytest

from envs import nr


@pytest.mark.parametrize("tid,idx,row", [
    (1, 1, (2, 78, 0.1523)), (1, 7, (4, 378, 1.4766)), (1, 10, (6, 466, 2.7305)),
    (1, 15, (6, 948, 5.5547)),
    (2, 3, (2, 449, 0.8770)), (2, 12, (8, 711, 5.5547)), (2, 15, (8, 948, 7.4063)),
    (3, 1, (2, 30, 0.0586)), (3, 15, (6, 772, 4.5234)),
])
def test_cqi_rows(tid, idx, row):
    t = nr.cqi_table(tid)
    assert len(t) == 15
    assert (t.qm[idx - 1], t.rate_x1024[idx - 1], t.se[idx - 1]) == row


@pytest.mark.parametrize("tid,idx,row", [
    (1, 0, (2, 120, 0.2344)), (1, 9, (2, 679, 1.3262)), (1, 10, (4, 340, 1.3281)),
    (1, 17, (6, 438, 2.5664)), (1, 28, (6, 948, 5.5547)),
    (2, 5, (4, 378, 1.4766)), (2, 20, (8, 682.5, 5.3320)), (2, 26, (8, 916.5, 7.1602)),
    (2, 27, (8, 948, 7.4063)),
    (3, 0, (2, 30, 0.0586)), (3, 15, (4, 340, 1.3281)), (3, 28, (6, 772, 4.5234)),
])
def test_mcs_rows(tid, idx, row):
    t = nr.mcs_table(tid)
    assert len(t) == {1: 29, 2: 28, 3: 29}[tid]
    assert (t.qm[idx], t.rate_x1024[idx], t.se[idx]) == row


def test_se_is_qm_times_rate_everywhere():
    for tid in (1, 2, 3):
        for t in (nr.mcs_table(tid), nr.cqi_table(tid)):
            np.testing.assert_allclose(t.qm * t.code_rate, t.se, atol=6e-5)
    # SE rises along every table except the one inversion the standard itself has:
    # MCS table 1, index 16 (16QAM, 2.5703) > index 17 (64QAM, 2.5664).
    for tid in (1, 2, 3):
        assert np.all(np.diff(nr.cqi_table(tid).se) > 0)
    drops = np.nonzero(np.diff(nr.mcs_table(1).se) < 0)[0].tolist()
    assert drops == [16]
    assert np.all(np.diff(nr.mcs_table(2).se) > 0) and np.all(np.diff(nr.mcs_table(3).se) > 0)


def test_tbs_table_shape():
    assert len(nr.TBS_TABLE) == 93 and nr.TBS_TABLE[0] == 24 and nr.TBS_TABLE[-1] == 3824
    assert np.all(np.diff(nr.TBS_TABLE) > 0)


def test_tbs_hand_computed():
    # 52 PRB, 12 symbols, 12 DMRS REs/PRB -> N_RE = 132 * 52 = 6864.
    # MCS 0: N_info = 6864*120/1024*2 = 1608.75; n = 4; N'_info = 1600; table -> 1608.
    assert nr.tbs(0, 52) == 1608
    # MCS 27: N_info = 36599.06; n = 10; N'_info = 1024*round(35.72) = 36864; C = 5;
    # TBS = 40 * ceil(36888 / 40) - 24 = 36896.
    assert nr.tbs(27, 52) == 36896
    # 1 PRB, MCS 9: N_info = 132*679/1024*2 = 175.05; n = 3; N'_info = 168 -> 168.
    assert nr.tbs(9, 1) == 168
    # 2 layers, MCS 28, 273 PRB (100 MHz @30 kHz): N_info = 132*273*948/1024*6*2 = 400315.5
    # n = 18 - 5 = 13; N'_info = 8192*round(48.864) = 401408; C = ceil(401432/8424) = 48;
    # TBS = 384 * ceil(401432/384) - 24 = 384 * 1046 - 24 = 401640.
    assert nr.tbs(28, 273, n_layers=2) == 401640
    # Low rate (R <= 1/4) above 3824: table 3, MCS 6 (R=120/1024), 273 PRB: N_info = 8446.6
    # n = 13 - 5 = 8; N'_info = 256*round(32.90) = 8448; C = ceil(8472/3816) = 3;
    # TBS = 24 * ceil(8472/24) - 24 = 8448.
    assert nr.tbs(6, 273, mcs_table_id=3) == 8448


def test_tbs_monotone_in_mcs():
    t = nr.tbs_per_mcs(52, 1)
    assert t.shape == (29,) and np.all(np.diff(t) >= 0)


def test_cqi_to_mcs():
    m = nr.cqi_to_mcs(1, 1)
    assert m.tolist() == [0, 0, 0, 2, 4, 6, 8, 11, 13, 15, 18, 20, 22, 24, 26, 28]
    assert nr.cqi_to_mcs(2, 2)[15] == 27


def test_bad_ids():
    with pytest.raises(ValueError, match=r"valid ids: \[1, 2, 3\]"):
        nr.mcs_table(4)
    with pytest.raises(ValueError, match="CQI table id"):
        nr.cqi_table("x")
    with pytest.raises(ValueError, match="mcs must be in 0..27"):
        nr.tbs(28, 52, mcs_table_id=2)
    with pytest.raises(ValueError, match="scs_khz"):
        nr.slot_duration_s(45)
