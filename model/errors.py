"""Configuration errors: each names the file, the field path and what is wrong."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ConfigError:
    file: str
    path: str  # e.g. "sites[1].domain"
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.path}: {self.message}"


class ConfigErrors(ValueError):
    """All the problems of one config file, reported at once (not one per run)."""

    def __init__(self, errors: list[ConfigError]):
        self.errors = list(errors)
        super().__init__("\n".join(str(e) for e in self.errors))

    def paths(self) -> list[str]:
        return [e.path for e in self.errors]


class ErrorList:
    """Collects the problems of one file (schema, then rules) so all are reported at once."""

    def __init__(self, file: str):
        self.file = file
        self.errors: list[ConfigError] = []

    def error(self, path: str, message: str) -> None:
        self.errors.append(ConfigError(self.file, path, message))
