"""The config schema's vocabularies are the code's tables: each list of names is defined once in the
package, and the schema (YAML, which cannot import them) must say the same, so a source, family or
option added in one place and not the other fails here instead of at a job."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sparse_vae import distributions, model, versions
from sparse_vae.data import SOURCES
from sparse_vae.data import natural

SCHEMA = yaml.safe_load((Path(__file__).resolve().parents[1] / "workflow/schemas/config.schema.yaml").read_text())


def enum(*path: str) -> list[str]:
    node = SCHEMA
    for key in path:
        node = node[key]
    return node["enum"]


@pytest.mark.parametrize("path, table", [
    (("$defs", "dataset", "properties", "source"), SOURCES),
    (("$defs", "prior", "properties", "family"), distributions.PRIOR_FAMILIES),
    (("$defs", "prior", "properties", "posterior"), distributions.POSTERIORS),
    (("$defs", "prior", "properties", "kl"), model.KL_METHODS),
    (("$defs", "prior", "properties", "objective"), model.OBJECTIVES),
    (("$defs", "model", "properties", "decoder"), model.DECODERS),
    (("$defs", "model", "properties", "likelihood"), model.LIKELIHOODS),
    (("$defs", "prepare_natural", "properties", "whiten"), natural.WHITEN),
    (("$defs", "prepare_natural", "properties", "scale"), natural.SCALES),
])
def test_schema_vocabulary_is_the_codes(path: tuple[str, ...], table: tuple[str, ...]) -> None:
    assert sorted(enum(*path)) == sorted(table)


def test_every_source_has_a_data_version() -> None:
    assert set(versions.DATA) == set(SOURCES)
