"""Study configuration: schema validation with messages that name the offending key.

The Snakefile calls :func:`validate_config` before any job is scheduled, so a typo in a key or a
negative epoch count stops the workflow at once instead of failing (or silently doing the wrong
thing) hours into a study. The same function serves the CLI and the tests.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from sparse_vae.errors import SparseVAEError

REPO = Path(__file__).resolve().parents[2]
SCHEMA_PATH = REPO / "workflow" / "schemas" / "config.schema.yaml"
DEFAULT_CONFIG = REPO / "config.yaml"


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
    hint = _number_hint(error)
    return f"{where}: {error.message}{hint}"


def _number_hint(error: jsonschema.ValidationError) -> str:
    """How to write a number that YAML read as a string: PyYAML follows YAML 1.1, where an
    exponent needs a dot and a sign (`1.0e+6`), so `1e6` and `1.0e6` arrive as text."""
    expected = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
    if error.validator != "type" or not isinstance(error.instance, str) or not {"number", "integer"} & set(expected):
        return ""
    match = re.fullmatch(r"\s*([-+]?)(\d+)(?:\.(\d*))?[eE]([-+]?)(\d+)\s*", error.instance)
    if not match:
        return ""
    sign, whole, fraction, exp_sign, exponent = match.groups()
    value = float(error.instance)
    spelled = f"{sign}{whole}.{fraction or '0'}e{exp_sign or '+'}{exponent}"
    if "number" not in expected:  # an integer key: only the digits will do
        suggestion = str(int(value)) if value.is_integer() else None
        return f" (YAML reads an exponent as text: write {suggestion})" if suggestion else ""
    return f" (YAML reads an exponent without a dot and a sign as text: write {spelled} or {value!r})"


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
        for dataset, entry in config["datasets"].items():
            for name in entry.get("priors", []):
                if name not in config["priors"]:
                    messages.append(f"datasets.{dataset}.priors: '{name}' is not defined under priors")
    if messages:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(messages))


def generating_family(dataset: Mapping[str, Any]) -> str | None:
    """The prior family that generated a dataset's latent causes, where the data are drawn from a
    known model: sparse_linear (Laplace sources) and synthetic with laplace or normal weights; None
    otherwise (real images, spike-and-slab weights). The training control reads it."""
    if dataset["source"] == "sparse_linear":
        return "laplace"
    if dataset["source"] == "synthetic" and dataset["prepare"].get("weights") in ("laplace", "normal"):
        return dataset["prepare"]["weights"]
    return None


def dataset_priors(config: Mapping[str, Any], dataset: str) -> list[str]:
    """The study's priors that `dataset` is trained with: all, unless its entry lists `priors`."""
    allowed = config["datasets"][dataset].get("priors")
    return [name for name in config["study"]["priors"] if allowed is None or name in allowed]


def read_yaml_mapping(path: str | Path) -> dict[str, Any]:
    """One YAML config file as a mapping; a missing, unparsable or empty file is a one-line error."""
    try:
        text = Path(path).read_text()
    except OSError as error:
        raise ConfigError(f"{path}: cannot read ({error.strerror})") from None
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}: {getattr(error, 'problem', error)}") from None
    if not isinstance(value, dict) or not value:
        raise ConfigError(f"{path}: empty or not a mapping of config keys")
    return value


def merge_config(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Merge `update` over `base` key by key, as Snakemake merges a --configfile over config.yaml."""
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            merge_config(base[key], value)
        else:
            base[key] = value
    return base


def load_config(*paths: str | Path, base: str | Path | None = DEFAULT_CONFIG) -> dict[str, Any]:
    """The study config Snakemake would see: `base` (config.yaml) with each file merged over it
    in order, then validated. `base=None` reads the files alone."""
    config: dict[str, Any] = read_yaml_mapping(base) if base is not None else {}
    for path in paths:
        merge_config(config, read_yaml_mapping(path))
    validate_config(config)
    return config


def canonical_json(value: Any) -> str:
    """A stable JSON text of a config slice: what rules pass as params, so equal slices compare equal."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
