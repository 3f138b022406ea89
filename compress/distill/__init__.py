"""Knowledge distillation: terms, taps, connectors, teachers, the Distiller and its LightningModules."""
from . import schedules, terms
from .cache import TeacherCache
from .distiller import Distiller, batch_input
from .focal import FocalLoss
from .losses import TargetLoss
from .module import DistillationModule, LeanHooks
from .online import OnlineDistillationModule
from .recipe_teacher import RecipeTeacher
from .taps import Tap
from .teachers import Checkpoint, EMATeacher, SnapshotTeacher, frozen_copy

__all__ = ["Distiller", "DistillationModule", "LeanHooks", "OnlineDistillationModule", "Checkpoint", "EMATeacher",
           "SnapshotTeacher", "frozen_copy", "RecipeTeacher", "TeacherCache", "TargetLoss", "FocalLoss", "Tap",
           "batch_input", "schedules", "terms"]
