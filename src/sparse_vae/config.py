"""Study configuration: schema validation with messages that name the offending key.

The Snakefile calls :func:`validate_config` before any job is scheduled, so a typo in a key or a
negative epoch count stops the workflow at once instead of failing (or silently doing the wrong
thing) hours into a study. The same function serves the CLI and the tests.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from sparse_vae.errors import SparseVAEError

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


class ConfigError(SparseVAEError, ValueError):
    """The configuration violates the schema; the message names the key and the problem."""


def load_schema(path: Path = SCHEMA_PATH) -> dict[str, Any]:
    with open(path) as fh:
        return yaml.safe_load(fh)


def _key_path(error: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "<top level>"


def _describe(error: jsonschema.ValidationError) -> str:
    """Turn a jsonschema error into one line that names the key at fault."""
    where = _key_path(error)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed)) if isinstance(error.instance, dict) else []
        hint = f" (allowed keys: {', '.join(allowed)})" if allowed else ""
        names = ", ".join(f"{where}.{k}" if where != "<top level>" else k for k in extra)
        return f"unknown key {names}{hint}"
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        full = f"{where}.{missing}" if where != "<top level>" else missing
        return f"missing key {full}"
    return f"{where}: {error.message}"


def _deepest(errors: list[jsonschema.ValidationError]) -> Iterator[jsonschema.ValidationError]:
    """Descend through oneOf/allOf/if-then wrappers to the errors that point at a real key."""
    for error in errors:
        if error.context:
            yield from _deepest(list(error.context))
        else:
            yield error


def validate_config(config: Mapping[str, Any], schema: Mapping[str, Any] | None = None) -> None:
    """Raise :class:`ConfigError` listing every violation, each naming its key.

    Beyond the schema it checks cross references: the study may only name datasets and priors
    that the config defines.
    """
    schema = schema if schema is not None else load_schema()
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(dict(config)), key=lambda e: list(e.absolute_path))
    messages = sorted({_describe(e) for e in _deepest(errors)})
    if not messages:
        study = config["study"]
        for name in study["datasets"]:
            if name not in config["datasets"]:
                messages.append(f"study.datasets: '{name}' is not defined under datasets")
        for name in study["priors"]:
            if name not in config["priors"]:
                messages.append(f"study.priors: '{name}' is not defined under priors")
    if messages:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(messages))


def load_config(path: str | Path) -> dict[str, Any]:
    """Read and validate a YAML config file."""
    with open(path) as fh:
        config = yaml.safe_load(fh)
    validate_config(config)
    return config


def canonical_json(value: Any) -> str:
    """A stable JSON text of a config slice: what rules pass as params, so equal slices compare equal."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
