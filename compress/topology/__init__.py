"""KD topologies across edge nodes (seed 002, Table I): centralized, decentralized and semi-centralized
distillation as compositions of recipe runs, with a ledger of the bytes moved and the edge compute."""
from .artifacts import ArtifactTeacher, InitFromArtifact, check_state_fits, read_artifact
from .compute import COMPUTE_FILE, EdgeCompute
from .flows import FLOWS, TOPOLOGIES, Node, Plan, Step, export_samples, run_server, run_step, run_topology, step_args
from .ledger import Ledger, Transfer
from .replay import REPLAY_FILE, ReplayMix, WriteReplay, read_replay

__all__ = ["ArtifactTeacher", "InitFromArtifact", "check_state_fits", "read_artifact", "EdgeCompute", "COMPUTE_FILE",
           "TOPOLOGIES", "FLOWS", "export_samples", "Node", "Plan", "Step", "run_server", "run_step", "run_topology", "step_args", "Ledger",
           "Transfer", "ReplayMix", "WriteReplay", "REPLAY_FILE", "read_replay"]
