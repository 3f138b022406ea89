"""Multi-modal beam tracking (seed 002: Nguyen et al., KD for collaborative learning in distributed C&S).

Data: ``BeamDataModule`` (synthetic scenario-9-like sequences or the DeepSense 6G layout, ``envs.beam``);
models: ``BeamTeacher`` and ``BeamStudent`` for ``modality`` 'image' or 'image_radar' (the seed's
released architectures, every size a knob); ``evaluate(policy, seeds)`` scores any module, ONNX
file or callable by top-1/2/5 accuracy at t0..t3.  Distillation, the focal loss, the per-slot
metrics, profiling and export are generic (``compress``); recipes ``recipes/beam_*.yaml``.
"""
from .data import BeamDataModule, WindowSet
from .deploy import BeamDeploy, deploy_student
from .evaluate import BeamEvaluator, as_predictor, evaluate
from .student import BeamStudent, StudentCNN
from .teacher import BeamTeacher

__all__ = ["BeamDataModule", "WindowSet", "BeamTeacher", "BeamStudent", "StudentCNN", "evaluate", "as_predictor", "BeamEvaluator",
           "BeamDeploy", "deploy_student"]
