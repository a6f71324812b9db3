"""Latent-space analysis of one trained run: ``metrics.json``, ``latents.npz`` and ``figures/*.png``.

The study asks whether sparse priors (Laplace, Cauchy) give better latent codes than the normal
prior at a small cost in fit. The package, bottom-up:

* ``metrics``       pure metric functions (arrays in, numbers out; each unit-tested);
* ``ranks``         the per-dimension rank transform every probe and the kNN MI apply first;
* ``model_passes``  the only code that calls the model (posterior, decode, importance weights);
* ``compute``       one run's metrics, one function per catalogue group (fit, latent use,
                    sparsity, labels, decoder, ground truth), each with the reasons for any
                    metric that does not apply;
* ``figure_data``, ``figures``, ``display``  what the figures draw, the figures, display transforms;
* ``run_io``        ``analyze_run``: load a run, compute, write the outputs atomically;
* ``estimator_controls``  known-answer controls of the estimators per posterior family (one JSON
                    per study, ``sparse-vae estimator-controls``), independent of every run.

What each metric means lives in ``sparse_vae.catalogue``. The model is used only through the
contract of docs/interfaces.md, so any object honouring it can be analysed.
"""

from sparse_vae.analysis.run_io import analyze_run

__all__ = ["analyze_run"]
