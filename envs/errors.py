"""Bad input to a simulator or data generator: ``EnvError``.

``envs`` does not import the framework (``compress``), so it cannot raise ``compress.UserError``;
``EnvError`` carries the mark the framework's CLI looks for (``user_error = True``): it is printed as
one line naming the parameter, not as a traceback.  It is a ``ValueError``.
"""

__all__ = ["EnvError"]


class EnvError(ValueError):
    """A simulator parameter or input is invalid (the message names it and the valid values)."""

    user_error = True
