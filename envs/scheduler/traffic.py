"""Downlink traffic per UE: full buffer, or FTP Model 3 (3GPP TR 36.889 / TR 38.814 style bursty traffic).

FTP Model 3: files of a fixed size S arrive at each UE as a Poisson process of rate lambda (a new file
arrives whether or not the previous ones are done; files queue FIFO). Offered load per UE = S * lambda.
User-perceived throughput (UPT) of a file = S / (time its last bit is delivered - its arrival time),
delivery counted at the end of the TTI. With a fixed S, file k of a UE completes when the UE's
cumulative delivered bits reach (k + 1) * S, so completions are found without per-file loops.
"""
from __future__ import annotations

import numpy as np

from envs.errors import EnvError

INF_BITS = 1e18


class Traffic:
    """Buffers of ``n`` UEs; ``ftp[u]`` says which UEs carry FTP3 (the others are full buffer)."""

    def __init__(self, ftp: np.ndarray, file_bits: float, files_per_s: float, tti_s: float,
                 rng: np.random.Generator):
        if file_bits <= 0 or files_per_s < 0:
            raise EnvError(f"FTP3 needs file_bits > 0 and files_per_s >= 0, got {file_bits}, {files_per_s}")
        self.ftp = np.asarray(ftp, bool)
        self.S, self.lam, self.tti = float(file_bits), float(files_per_s), float(tti_s)
        self.rng = rng
        n = len(self.ftp)
        self.served = np.zeros(n)               # cumulative delivered bits
        self.n_arrived = np.zeros(n, np.int64)
        self.n_done = np.zeros(n, np.int64)
        self._arr = np.zeros((n, 16))           # ring of arrival times per UE (grows when needed)
        self.upt_ue: list[np.ndarray] = []      # per completed file: UE index
        self.upt_val: list[np.ndarray] = []     # per completed file: UPT bit/s
        self.offered = 0.0
        self.t = 0.0

    def buffer(self) -> np.ndarray:
        """Bits waiting per UE (INF_BITS for full buffer)."""
        b = self.n_arrived * self.S - self.served
        return np.where(self.ftp, np.maximum(b, 0.0), INF_BITS)

    def arrive(self) -> None:
        """Poisson file arrivals during the next TTI (arrival instants uniform inside it)."""
        k = np.where(self.ftp, self.rng.poisson(self.lam * self.tti, len(self.ftp)), 0)
        if not k.any():
            return
        need = int((self.n_arrived + k - self.n_done).max())
        if need > self._arr.shape[1]:
            self._grow(need)
        cap = self._arr.shape[1]
        u = np.repeat(np.arange(len(k)), k)
        j = np.concatenate([np.arange(x) for x in k[k > 0]]) + np.repeat(self.n_arrived[k > 0], k[k > 0])
        self._arr[u, j % cap] = self.t + self.tti * self.rng.random(len(u))
        self.n_arrived += k
        self.offered += k.sum() * self.S

    def _grow(self, need: int) -> None:
        cap = self._arr.shape[1]
        new = max(need, 2 * cap)
        arr = np.zeros((len(self.ftp), new))
        for u in range(len(self.ftp)):                  # rare: copy the live part of each ring
            j = np.arange(self.n_done[u], self.n_arrived[u])
            arr[u, j % new] = self._arr[u, j % cap]
        self._arr = arr

    def deliver(self, bits: np.ndarray, measuring: bool = True) -> None:
        """Add delivered bits per UE at the end of the current TTI and record completed files' UPT."""
        self.served += np.where(self.ftp, bits, 0.0)
        self.t += self.tti
        done = np.minimum(np.floor(self.served / self.S + 1e-9).astype(np.int64), self.n_arrived)
        new = done - self.n_done
        if new.any() and measuring:
            u = np.repeat(np.arange(len(new)), new)
            j = np.concatenate([np.arange(a, b) for a, b in zip(self.n_done[new > 0], done[new > 0])])
            dur = self.t - self._arr[u, j % self._arr.shape[1]]
            self.upt_ue.append(u)
            self.upt_val.append(self.S / np.maximum(dur, 1e-9))
        self.n_done = done

    def upt(self) -> tuple[np.ndarray, np.ndarray]:
        """(UE index, UPT bit/s) of every file completed while measuring."""
        if not self.upt_ue:
            return np.zeros(0, np.int64), np.zeros(0)
        return np.concatenate(self.upt_ue), np.concatenate(self.upt_val)
