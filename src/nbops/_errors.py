"""The exception hierarchy. Every error nbops raises derives from NbopsError and says
what went wrong and how to fix it."""


class NbopsError(Exception):
    """Base class of every nbops error."""


class StoreError(NbopsError):
    """The store cannot be read or written (corrupt file, bad path, no permission)."""


class RunNotFoundError(NbopsError, KeyError):
    """No run with the given id is in the store."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0]) if self.args else ""


class ArtifactError(NbopsError):
    """An artifact name or file is unusable (escapes the store, missing, unreadable)."""


class ModelIntegrityError(NbopsError):
    """A model file does not match the sha256 or trusted types recorded for it."""


class RegistryError(NbopsError):
    """A registry operation is invalid (unknown model, stage, alias or version)."""


class DriftWarning(UserWarning):
    """Drift was computed, but on less than the user asked for (a column missing from
    one side is listed in ``report.missing`` and left out)."""


class DriftError(NbopsError):
    """Drift cannot be computed from the given data."""


class ExportError(NbopsError):
    """A service folder cannot be written (bad canary plan, folder in the way, ...)."""


class ServiceStartError(NbopsError):
    """A service process did not start or become ready (its own message says why)."""


class SyncError(NbopsError):
    """Pushing to or pulling from an MLflow tracking server cannot start or failed whole."""


class GateError(RegistryError):
    """A promotion gate failed, so a version was not moved. ``results`` lists every
    rule with its measured value, threshold and verdict; ``name``, ``version`` and
    ``stage`` say which move was refused."""

    def __init__(
        self,
        message: str,
        name: str | None = None,
        version: int | None = None,
        stage: str | None = None,
        results: list | None = None,
    ) -> None:
        super().__init__(message)
        self.name, self.version, self.stage = name, version, stage
        self.results = list(results or [])


class GateRuleError(RegistryError):
    """A gate rule does not follow the grammar. ``rule`` is the text, ``position`` the
    index of the part that is wrong (the message repeats the rule with a caret there)."""

    def __init__(self, message: str, rule: str = "", position: int = 0) -> None:
        super().__init__(message)
        self.rule, self.position = rule, position


class StoreDamageWarning(UserWarning):
    """The store has damaged lines that were skipped (run ``nbops store check``)."""


class SweepError(NbopsError):
    """A sweep cannot run: a bad spec, search, objective, or a missing extra."""


class SweepSpecError(SweepError):
    """A sweep spec string is malformed; ``token`` is the offending part."""

    def __init__(self, message: str, spec: str = "", start: int = 0, end: int = 0) -> None:
        self.token = spec[start:end] if spec else ""
        pointer = ""
        if spec:
            pointer = f"\n  {spec}\n  {' ' * start}{'^' * max(1, end - start)}"
        super().__init__(f"bad sweep spec: {message}{pointer}")


class ReproduceWarning(UserWarning):
    """A reproduction ran under conditions that differ from the original run (another
    package version, git commit, or a dirty tree)."""


class QualityError(NbopsError):
    """The data cannot be checked for quality (not a DataFrame, bad limits)."""


class CheckConfigError(NbopsError):
    """``nbops check`` cannot run a check: the check file or one of its inputs is wrong
    (``nbops check`` exits 2)."""


class AlertError(NbopsError):
    """An alert rule or channel is invalid (unknown operator or action, bad URL, missing
    address)."""


class AlertDeliveryWarning(UserWarning):
    """An alert fired but its channel could not deliver it (the event records why)."""
