"""Errors the CLI reports as one clear line instead of a traceback."""


class SparseVAEError(Exception):
    """Base of the errors a user can act on (bad input, missing files, diverged training)."""


class DataError(SparseVAEError):
    """A dataset is missing, corrupt or cannot be obtained; the message names the file or folder."""


class TrainingDiverged(SparseVAEError):
    """A loss term became NaN or infinite; the message names run, epoch, step and term."""


class MissingRunError(SparseVAEError):
    """The report found a run without its metrics; the message names the run."""
