"""The validation and test score of a run, or of every member of a pack at once.

Per member: the mean -ELBO, reconstruction, KL and `val_iwae_samples`-draw IWAE bound over a split,
from `VAE.log_weights` reduced by `model.iwae_bound` in float64. The draws come from their own
generator, seeded `EVAL_SEED` at every call, EVAL_BATCH examples at a time and shared by every
member: each epoch is scored on the same noise, scoring never moves a training stream, and each
member is scored on exactly the noise its run alone would see.
"""

from __future__ import annotations

import torch

from sparse_vae.model import VAE, iwae_bound
from sparse_vae.stacked import Noise

EVAL_TERMS = ("loss", "recon", "kl", "iwae")
EVAL_SEED = 12345              # the evaluation generator's seed (the same for every epoch, seed and run)
EVAL_BATCH = 1024              # examples per draw of the evaluation noise (fixes which draw meets which example)
EVAL_ELEMENTS = 1 << 24        # cap on a scoring pass's largest tensor (draws x members x examples x pixels)


@torch.no_grad()
def score(model: VAE, x: torch.Tensor, n_samples: int, generator: torch.Generator) -> torch.Tensor:
    """(K, 4) mean -ELBO, recon, kl and IWAE bound over `x`, K = the members the model holds (1 for a
    plain model), on the host. Rows are scored in slices small enough for memory (a pack's tensors
    are K times a run's); the slicing changes no draw and no sum."""
    model.eval()
    k = model.candidates or 1
    saved, model.noise = model.noise, Noise([generator.manual_seed(EVAL_SEED)])
    rows = max(1, min(EVAL_BATCH, EVAL_ELEMENTS // (n_samples * k * x.shape[1])))
    totals = torch.zeros(k, len(EVAL_TERMS), device=x.device, dtype=torch.float64)
    try:
        for start in range(0, x.shape[0], EVAL_BATCH):
            batch = x[start:start + EVAL_BATCH]
            eps = model.standard_eps((n_samples, batch.shape[0], model.latent), batch)
            terms = torch.cat([example_terms(model, batch[r:r + rows], eps[:, r:r + rows])
                               for r in range(0, batch.shape[0], rows)], -2)
            totals += terms.reshape(k, -1, len(EVAL_TERMS)).sum(1)
    finally:
        model.noise = saved
    return (totals / x.shape[0]).cpu()


def example_terms(model: VAE, x: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """(..., B, 4) per-example -ELBO, recon, kl and IWAE bound at the given standard draws."""
    log_lik, log_ratio = model.log_weights(x, model.posterior(x), eps.shape[0], eps)
    log_lik, log_ratio = log_lik.double(), log_ratio.double().sum(-1)
    iwae = iwae_bound(log_lik - log_ratio, 0)
    return torch.stack([(log_ratio - log_lik).mean(0), -log_lik.mean(0), log_ratio.mean(0), iwae], -1)
