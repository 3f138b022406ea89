"""What moved between the server and the edge nodes, in exact bytes, and what each node computed.

``Ledger.ship(src, dst_dir, ...)`` copies an artifact file into a receiver's inbox (atomically) and
records the size of the file actually written there; a node's training compute is read from the
``edge_compute.json`` its run wrote (``compress.topology.compute``).  ``raw_data`` marks a transfer of a
node's raw local data (e.g. a data update uploaded to the server); ``raw_data_left_node(node)`` is true
when any such transfer left that node.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..atomic import atomic_write
from ..errors import UserError

__all__ = ["Transfer", "Ledger"]


@dataclass
class Transfer:
    artifact: str       # what it is: "teacher", "student", "replay", ...
    sender: str
    receiver: str
    path: str           # the file written at the receiver
    bytes: int
    raw_data: bool = False


@dataclass
class Ledger:
    transfers: list[Transfer] = field(default_factory=list)
    compute: dict[str, list[dict]] = field(default_factory=dict)

    def ship(self, src: str | Path, dst_dir: str | Path, artifact: str, sender: str, receiver: str,
             raw_data: bool = False, name: str | None = None) -> Path:
        """Copy ``src`` to ``dst_dir/name`` (default: its own name) and record the bytes written."""
        src = Path(src)
        if not src.is_file():
            raise UserError(f"cannot send {artifact} from {sender} to {receiver}: {src} does not exist")
        dst = Path(dst_dir) / (name or src.name)
        with open(src, "rb") as f:
            atomic_write(dst, lambda out: shutil.copyfileobj(f, out))
        size = dst.stat().st_size
        if size != src.stat().st_size:
            raise OSError(f"copy of {src} to {dst} is {size} bytes, the original {src.stat().st_size}")
        self.transfers.append(Transfer(artifact, sender, receiver, str(dst), size, raw_data))
        return dst

    def add_compute(self, node: str, run_dir: str | Path, step: str) -> dict:
        path = Path(run_dir) / "edge_compute.json"
        if not path.is_file():
            raise UserError(f"{path} missing: the node step '{step}' ran without the EdgeCompute callback")
        rec = json.loads(path.read_text())
        rec["step"] = step
        self.compute.setdefault(node, []).append(rec)
        return rec

    def bytes_moved(self, node: str | None = None) -> int:
        return sum(t.bytes for t in self.transfers if node is None or node in (t.sender, t.receiver))

    def edge_flops(self, node: str) -> int:
        return sum(r["flops"] for r in self.compute.get(node, []))

    def raw_data_left_node(self, node: str) -> bool:
        return any(t.raw_data and t.sender == node for t in self.transfers)

    def to_dict(self) -> dict:
        return {"transfers": [asdict(t) for t in self.transfers], "compute": self.compute}
