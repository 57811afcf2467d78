"""Exceptions metarl raises for bad input, before anything is compiled or written."""


class ConfigError(ValueError):
    """A configuration value is invalid. The message names the field and the allowed values."""


class RegistryError(KeyError):
    """An unknown or duplicate name in one of metarl's registries."""

    def __str__(self) -> str:  # KeyError quotes its message; show it plainly.
        return str(self.args[0]) if self.args else ""


class LearnedFileError(ValueError):
    """A learned-component file does not match what was asked for (family, name or shapes)."""


class StorageError(OSError):
    """A write failed (a full disk, a quota, a read-only folder). The message names the folder and says what is intact."""


USER_ERRORS = (ConfigError, RegistryError, LearnedFileError, StorageError)
"""What a command reports as one line naming the cause (exit 2), never as a traceback."""
