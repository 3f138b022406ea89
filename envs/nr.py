"""3GPP NR facts used by the link-adaptation environment (TS 38.214, Rel-15+ values).

Holds, as plain numpy arrays, exactly what the standard tabulates:

* CQI tables 5.2.2.1-2 ("table 1", up to 64QAM), 5.2.2.1-3 ("table 2", up to 256QAM) and
  5.2.2.1-4 ("table 3", low spectral efficiency);
* PDSCH MCS index tables 5.1.3.1-1 ("table 1", 64QAM), 5.1.3.1-2 ("table 2", 256QAM) and
  5.1.3.1-3 ("table 3", low SE) — only the MCS indices valid for an initial transmission
  (the reserved indices that only signal a modulation order for retransmissions are left out);
* the transport block size procedure of 38.214 5.1.3.2 (N_info, its quantization, Table
  5.1.3.2-1 for N_info <= 3824, the LDPC code-block formula above);
* the nominal RBG size P of Table 5.1.2.2.1-1 (downlink resource allocation type 0) and the RBG
  sizes of a bandwidth part that follow from it (38.214 5.1.2.2.1).

Design: facts live here once, as numbers typed from the standard, and every other module
(BLER abstraction, env, baselines) derives from them. Spectral efficiency is kept as the
4-decimal value printed in the standard (it is Qm * R rounded), because that is what a reader
checks against the PDF.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import EnvError

# (modulation order Qm, code rate x 1024, spectral efficiency) rows ------------------------------

_CQI_ROWS = {
    1: [  # Table 5.2.2.1-2 (CQI index 1..15; index 0 = out of range)
        (2, 78, 0.1523), (2, 120, 0.2344), (2, 193, 0.3770), (2, 308, 0.6016), (2, 449, 0.8770),
        (2, 602, 1.1758), (4, 378, 1.4766), (4, 490, 1.9141), (4, 616, 2.4063), (6, 466, 2.7305),
        (6, 567, 3.3223), (6, 666, 3.9023), (6, 772, 4.5234), (6, 873, 5.1152), (6, 948, 5.5547),
    ],
    2: [  # Table 5.2.2.1-3
        (2, 78, 0.1523), (2, 193, 0.3770), (2, 449, 0.8770), (4, 378, 1.4766), (4, 490, 1.9141),
        (4, 616, 2.4063), (6, 466, 2.7305), (6, 567, 3.3223), (6, 666, 3.9023), (6, 772, 4.5234),
        (6, 873, 5.1152), (8, 711, 5.5547), (8, 797, 6.2266), (8, 885, 6.9141), (8, 948, 7.4063),
    ],
    3: [  # Table 5.2.2.1-4
        (2, 30, 0.0586), (2, 50, 0.0977), (2, 78, 0.1523), (2, 120, 0.2344), (2, 193, 0.3770),
        (2, 308, 0.6016), (2, 449, 0.8770), (2, 602, 1.1758), (4, 378, 1.4766), (4, 490, 1.9141),
        (4, 616, 2.4063), (6, 466, 2.7305), (6, 567, 3.3223), (6, 666, 3.9023), (6, 772, 4.5234),
    ],
}

_MCS_ROWS = {
    1: [  # Table 5.1.3.1-1, MCS 0..28
        (2, 120, 0.2344), (2, 157, 0.3066), (2, 193, 0.3770), (2, 251, 0.4902), (2, 308, 0.6016),
        (2, 379, 0.7402), (2, 449, 0.8770), (2, 526, 1.0273), (2, 602, 1.1758), (2, 679, 1.3262),
        (4, 340, 1.3281), (4, 378, 1.4766), (4, 434, 1.6953), (4, 490, 1.9141), (4, 553, 2.1602),
        (4, 616, 2.4063), (4, 658, 2.5703), (6, 438, 2.5664), (6, 466, 2.7305), (6, 517, 3.0293),
        (6, 567, 3.3223), (6, 616, 3.6094), (6, 666, 3.9023), (6, 719, 4.2129), (6, 772, 4.5234),
        (6, 822, 4.8164), (6, 873, 5.1152), (6, 910, 5.3320), (6, 948, 5.5547),
    ],
    2: [  # Table 5.1.3.1-2, MCS 0..27
        (2, 120, 0.2344), (2, 193, 0.3770), (2, 308, 0.6016), (2, 449, 0.8770), (2, 602, 1.1758),
        (4, 378, 1.4766), (4, 434, 1.6953), (4, 490, 1.9141), (4, 553, 2.1602), (4, 616, 2.4063),
        (4, 658, 2.5703), (6, 466, 2.7305), (6, 517, 3.0293), (6, 567, 3.3223), (6, 616, 3.6094),
        (6, 666, 3.9023), (6, 719, 4.2129), (6, 772, 4.5234), (6, 822, 4.8164), (6, 873, 5.1152),
        (8, 682.5, 5.3320), (8, 711, 5.5547), (8, 754, 5.8906), (8, 797, 6.2266), (8, 841, 6.5703),
        (8, 885, 6.9141), (8, 916.5, 7.1602), (8, 948, 7.4063),
    ],
    3: [  # Table 5.1.3.1-3, MCS 0..28
        (2, 30, 0.0586), (2, 40, 0.0781), (2, 50, 0.0977), (2, 64, 0.1250), (2, 78, 0.1523),
        (2, 99, 0.1934), (2, 120, 0.2344), (2, 157, 0.3066), (2, 193, 0.3770), (2, 251, 0.4902),
        (2, 308, 0.6016), (2, 379, 0.7402), (2, 449, 0.8770), (2, 526, 1.0273), (2, 602, 1.1758),
        (4, 340, 1.3281), (4, 378, 1.4766), (4, 434, 1.6953), (4, 490, 1.9141), (4, 553, 2.1602),
        (4, 616, 2.4063), (6, 438, 2.5664), (6, 466, 2.7305), (6, 517, 3.0293), (6, 567, 3.3223),
        (6, 616, 3.6094), (6, 666, 3.9023), (6, 719, 4.2129), (6, 772, 4.5234),
    ],
}

# Table 5.1.3.2-1: TBS for N_info <= 3824 (93 values).
TBS_TABLE = np.array([
    24, 32, 40, 48, 56, 64, 72, 80, 88, 96, 104, 112, 120, 128, 136, 144, 152, 160, 168, 176, 184,
    192, 208, 224, 240, 256, 272, 288, 304, 320, 336, 352, 368, 384, 408, 432, 456, 480, 504, 528,
    552, 576, 608, 640, 672, 704, 736, 768, 808, 848, 888, 928, 984, 1032, 1064, 1128, 1160, 1192,
    1224, 1256, 1288, 1320, 1352, 1416, 1480, 1544, 1608, 1672, 1736, 1800, 1864, 1928, 2024, 2088,
    2152, 2216, 2280, 2408, 2472, 2536, 2600, 2664, 2728, 2792, 2856, 2976, 3104, 3240, 3368, 3496,
    3624, 3752, 3824,
], dtype=np.int64)


@dataclass(frozen=True)
class RateTable:
    """One CQI or MCS table: arrays indexed by row (CQI index - 1, or MCS index)."""

    kind: str
    table_id: int
    qm: np.ndarray          # modulation order (bits per symbol)
    rate_x1024: np.ndarray  # target code rate x 1024
    se: np.ndarray          # spectral efficiency as printed in the standard

    @property
    def code_rate(self) -> np.ndarray:
        return self.rate_x1024 / 1024.0

    def __len__(self) -> int:
        return len(self.qm)


def _build(kind: str, rows: dict, table_id) -> RateTable:
    if isinstance(table_id, bool) or table_id not in rows:
        raise EnvError(f"unknown {kind} table id {table_id!r}; valid ids: {sorted(rows)}")
    arr = np.array(rows[table_id], dtype=np.float64)
    return RateTable(kind, int(table_id), arr[:, 0].astype(np.int64), arr[:, 1], arr[:, 2])


def cqi_table(table_id: int = 1) -> RateTable:
    """CQI table of TS 38.214 5.2.2.1 (row i is CQI index i + 1; CQI 0 = out of range)."""
    return _build("CQI", _CQI_ROWS, table_id)


def mcs_table(table_id: int = 1) -> RateTable:
    """PDSCH MCS index table of TS 38.214 5.1.3.1 (row i is MCS index i, reserved rows omitted)."""
    return _build("MCS", _MCS_ROWS, table_id)


def cqi_to_mcs(cqi_table_id: int = 1, mcs_table_id: int = 1) -> np.ndarray:
    """Map CQI index 0..15 to the highest MCS whose spectral efficiency does not exceed the CQI's.

    CQI 0 (out of range) and any CQI below the lowest MCS map to MCS 0.
    Returns an int64 array of length 16.
    """
    cq, mc = cqi_table(cqi_table_id), mcs_table(mcs_table_id)
    out = np.zeros(16, dtype=np.int64)
    for c in range(1, 16):
        ok = np.nonzero(mc.se <= cq.se[c - 1] + 1e-9)[0]
        out[c] = ok[-1] if len(ok) else 0
    return out


def n_re(n_prb: int, n_symb: int = 12, n_dmrs_per_prb: int = 12, n_oh_per_prb: int = 0) -> int:
    """Resource elements for data (38.214 5.1.3.2 step 1): min(156, 12*n_symb - dmrs - oh) * n_prb."""
    if n_prb <= 0 or n_symb <= 0 or n_symb > 14:
        raise EnvError(f"n_prb must be > 0 and n_symb in 1..14, got n_prb={n_prb}, n_symb={n_symb}")
    re_prb = 12 * n_symb - n_dmrs_per_prb - n_oh_per_prb
    if re_prb <= 0:
        raise EnvError(f"no data REs: 12*n_symb - n_dmrs_per_prb - n_oh_per_prb = {re_prb}")
    return min(156, re_prb) * n_prb


def tbs_from_ninfo(n_info: float, code_rate: float) -> int:
    """Transport block size from N_info and target code rate R (38.214 5.1.3.2 steps 2-4)."""
    if n_info <= 0:
        raise EnvError(f"n_info must be > 0, got {n_info}")
    if n_info <= 3824:
        n = max(3, math.floor(math.log2(n_info)) - 6)
        n_info_q = max(24, (2 ** n) * math.floor(n_info / 2 ** n))
        return int(TBS_TABLE[np.searchsorted(TBS_TABLE, n_info_q)])
    n = math.floor(math.log2(n_info - 24)) - 5
    n_info_q = max(3840, (2 ** n) * math.floor((n_info - 24) / 2 ** n + 0.5))  # round half up
    if code_rate <= 0.25:
        c = math.ceil((n_info_q + 24) / 3816)
        return 8 * c * math.ceil((n_info_q + 24) / (8 * c)) - 24
    if n_info_q > 8424:
        c = math.ceil((n_info_q + 24) / 8424)
        return 8 * c * math.ceil((n_info_q + 24) / (8 * c)) - 24
    return 8 * math.ceil((n_info_q + 24) / 8) - 24


def tbs(mcs: int, n_prb: int, mcs_table_id: int = 1, n_layers: int = 1, n_symb: int = 12,
        n_dmrs_per_prb: int = 12, n_oh_per_prb: int = 0) -> int:
    """TBS in bits for one PDSCH allocation (38.214 5.1.3.2), e.g. tbs(27, 52) for 52 PRBs."""
    t = mcs_table(mcs_table_id)
    if not 0 <= int(mcs) < len(t):
        raise EnvError(f"mcs must be in 0..{len(t) - 1} for MCS table {mcs_table_id}, got {mcs}")
    if n_layers not in (1, 2, 3, 4):
        raise EnvError(f"n_layers must be 1..4 for one codeword, got {n_layers}")
    r = float(t.code_rate[mcs])
    n_info = n_re(n_prb, n_symb, n_dmrs_per_prb, n_oh_per_prb) * r * int(t.qm[mcs]) * n_layers
    return tbs_from_ninfo(n_info, r)


def tbs_per_mcs(n_prb: int, mcs_table_id: int = 1, **kw) -> np.ndarray:
    """TBS (bits) for every MCS index of a table at one allocation, int64 array."""
    return np.array([tbs(m, n_prb, mcs_table_id, **kw) for m in range(len(mcs_table(mcs_table_id)))],
                    dtype=np.int64)


def code_blocks(tb_size: int, code_rate: float) -> tuple[int, int]:
    """(number of LDPC code blocks C, bits per code block K') for a TB (38.212 5.2.2, approximate K').

    Base graph 2 when TBS <= 3824 or R <= 1/4 (max code block 3840), else base graph 1 (8448).
    K' counts information + CRC bits per block, before filler bits.
    """
    b = tb_size + (16 if tb_size <= 3824 else 24)
    bg2 = tb_size <= 292 or (tb_size <= 3824 and code_rate <= 0.67) or code_rate <= 0.25
    kcb = 3840 if bg2 else 8448
    if b <= kcb:
        return 1, b
    c = math.ceil(b / (kcb - 24))
    return c, math.ceil((b + c * 24) / c)


def slot_duration_s(scs_khz: int) -> float:
    """Slot (= TTI here) duration for numerology mu: 1 ms / 2^mu with SCS = 15 kHz * 2^mu."""
    if scs_khz not in (15, 30, 60, 120):
        raise EnvError(f"scs_khz must be one of 15, 30, 60, 120, got {scs_khz}")
    return 1e-3 * 15 / scs_khz


# Table 5.1.2.2.1-1: nominal RBG size P by bandwidth-part size, (configuration 1, configuration 2).
RBG_TABLE = ((1, 36, 2, 4), (37, 72, 4, 8), (73, 144, 8, 16), (145, 275, 16, 16))


def nominal_rbg_size(n_bwp: int, config: int = 1) -> int:
    """Nominal RBG size P for a BWP of ``n_bwp`` PRBs (TS 38.214 Table 5.1.2.2.1-1, config 1 or 2)."""
    if isinstance(n_bwp, bool) or not isinstance(n_bwp, (int, np.integer)) or not 1 <= n_bwp <= 275:
        raise EnvError(f"n_bwp must be an integer PRB count in 1..275, got {n_bwp!r}")
    if config not in (1, 2):
        raise EnvError(f"RBG configuration must be 1 or 2, got {config!r}")
    for lo, hi, p1, p2 in RBG_TABLE:
        if lo <= n_bwp <= hi:
            return p1 if config == 1 else p2
    raise AssertionError("unreachable")


def rbg_sizes(n_bwp: int, p: int, n_start: int = 0) -> np.ndarray:
    """PRBs in each RBG of a BWP (38.214 5.1.2.2.1): N_RBG = ceil((N_size + N_start mod P) / P);
    the first RBG has P - N_start mod P PRBs, the last (N_start + N_size) mod P (if > 0), the rest P.

    ``p`` is not checked against the table here (see :func:`nominal_rbg_size`); e.g.
    ``rbg_sizes(273, 16)`` gives 17 RBGs of 16 PRBs and a last one of 1 PRB.
    """
    if n_bwp < 1 or p < 1 or n_start < 0:
        raise EnvError(f"need n_bwp >= 1, p >= 1, n_start >= 0, got {n_bwp}, {p}, {n_start}")
    n_rbg = -(-(n_bwp + n_start % p) // p)
    sizes = np.full(n_rbg, p, dtype=np.int64)
    sizes[0] = p - n_start % p
    last = (n_start + n_bwp) % p
    if last > 0 and n_rbg > 1:
        sizes[-1] = last
    elif n_rbg == 1:
        sizes[0] = n_bwp
    return sizes
