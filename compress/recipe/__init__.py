"""Recipes: one YAML file = one reproducible job.

* ``prepare(path, argv)`` — load (YAML 1.2, safe), apply dotted overrides, validate: what every command
  runs first (``compress.recipe.prepare``).
* ``instantiate(spec, key)`` — build the objects of a validated spec, errors naming the key.
* the allow list (``compress.recipe.allow``): a recipe may only name classes of this project, of
  ``torch.nn`` / ``torch.optim`` / ``torch.utils.data``, of Lightning's callbacks, loggers, strategies,
  plugins, profilers and accelerators, and of ``torchmetrics``.
"""
from ..errors import RecipeError
from .allow import ALLOWED_PACKAGES, allowing_any_class, any_class_allowed, import_class
from .argv import CommandLine, parse_command_line
from .instantiate import instantiate
from .load import apply_override, get_path, load_recipe
from .prepare import Prepared, prepare, run_dir_of
from .types import check_init_args
from .validate import EXPORT_KEYS, LIGHTNING_KEYS, PROJECT_KEYS, TRAINING_KEYS, iter_specs, validate_recipe

__all__ = ["RecipeError", "ALLOWED_PACKAGES", "allowing_any_class", "any_class_allowed", "import_class",
           "CommandLine", "parse_command_line", "instantiate", "apply_override", "get_path", "load_recipe",
           "Prepared", "prepare", "run_dir_of", "check_init_args", "EXPORT_KEYS", "LIGHTNING_KEYS",
           "PROJECT_KEYS", "TRAINING_KEYS", "iter_specs", "validate_recipe"]
