"""One log-weight function and one IWAE reduction serve training's selection score and the analysis'
reported IWAE: on the same weights, data and draws the two numbers are equal."""

from __future__ import annotations

import pytest
import torch

from sparse_vae.analysis import metrics
from sparse_vae.analysis.model_passes import importance_log_weights
from sparse_vae.model import build_model, iwae_bound

SPEC = {"dataset": "t", "latent": 3, "seed": 1,
        "model": {"hidden": [8], "decoder": "mlp", "likelihood": "gaussian", "obs_scale": "learned"},
        "train": {}}


@pytest.mark.parametrize("family, posterior, kl", [("normal", "gaussian", "closed_form"),
                                                   ("laplace", "gaussian", "monte_carlo"),
                                                   ("cauchy", "cauchy", "closed_form")])
def test_selection_and_reported_iwae_are_the_same_estimator(family: str, posterior: str, kl: str) -> None:
    spec = {**SPEC, "prior": {"name": family, "family": family, "posterior": posterior, "scale": 1.0, "kl": kl,
                              "kl_samples": 1, "objective": "iwae", "objective_samples": 4}}
    torch.manual_seed(0)
    model = build_model(spec, input_dim=10).eval()
    x = torch.rand(32, 10)
    with torch.no_grad():
        torch.manual_seed(5)
        selection = model.iwae_bound(x, 64)                      # what validation scores and stops on
        torch.manual_seed(5)
        _, log_w = importance_log_weights(model, x, 64, chunk_elements=10 * 32 * 16)   # analysis, in chunks
        reported = metrics.iwae_bound(log_w)
    assert reported.dtype == torch.float64
    torch.testing.assert_close(reported, selection.double(), rtol=1e-6, atol=1e-5)


def test_the_reduction_is_the_log_mean_of_the_weights() -> None:
    log_w = torch.randn(50, 7, dtype=torch.float64) * 30
    expected = torch.log(torch.exp(log_w - log_w.max(0).values).mean(0)) + log_w.max(0).values
    torch.testing.assert_close(iwae_bound(log_w, 0), expected)
    torch.testing.assert_close(metrics.iwae_bound(log_w), expected)
