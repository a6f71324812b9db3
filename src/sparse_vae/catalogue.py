"""The metric catalogue: every quantity the study reports, with its label, unit, definition and
direction, in report order, with each metric's equivalence margin (the smallest difference between
two priors worth calling one, in its own units, and why). The one home of the metric vocabulary.

Margins are pre-registered (issue 34): each is the smallest effect of interest, argued a priori from
the metric's own scale, the theory of the codes or the literature, never from this study's results;
relative (a log ratio, ``Metric.scale`` "log") where the metric's scale varies between data sets.

Analysis (``SCALAR_METRICS``, the definitions written into ``metrics.json``), the report (column
order, units, labels, the HTML's definitions table, which direction a verdict claims) and the docs
all read this table. Adding a metric means adding a row here and computing it in the analysis
group the row names (``sparse_vae.analysis.compute``); nothing else. Not here: how a metric is
computed (``analysis.metrics``) or which verdict uses it (``report.verdicts``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "GROUPS", "METRICS", "PER_DIMENSION", "SCALAR_METRICS", "TERMS", "TRAINING", "Metric",
    "definitions", "direction", "label", "margin_of", "metric", "unit", "value_range",
]

#: analysis groups, in the order the analysis computes them (each a function of analysis.compute).
GROUPS = ("fit", "latent_use", "sparsity", "labels", "decoder", "ground_truth")
#: a field kind is detectable when the centre-surround classifier finds at least this share of constructed
#: centre-surround fields at the run's noise level; fixed a priori (analysis sets rf_*_detectable by it,
#: the report reads claim 3a below it as "not observed")
RETINA_DETECTABLE_RATE = 0.8
#: a latent dimension is USED when its rate I(x; z_d) exceeds this many nats (Geadah et al.'s 0.1-nat
#: criterion for an uncollapsed latent); the headline of analysis.information's threshold curve
USED_RATE_NATS = 0.1


@dataclass(frozen=True)
class Metric:
    """One reported quantity. ``better`` is "higher", "lower" or "" (no preferred direction)."""

    name: str
    label: str
    unit: str
    better: str
    group: str
    definition: str
    panel: bool = False  # drawn in the report's per-dataset metric panels
    #: the range a value can take, (low, high); None = unbounded, "L" = the latent size. The
    #: report clips t-intervals to it (a mean of fractions cannot lie outside [0, 1]).
    bounds: tuple[float | None, float | str | None] = (None, None)
    note: str = ""  # how to read it beside a metric that can look contradictory (the glossary)
    #: the smallest difference of interest between two priors, in the metric's own units: a paired
    #: difference whose interval lies within +-margin reads "no difference" (report.statistics);
    #: None = no margin stated, so the report can say "inconclusive" but never "no difference".
    margin: float | None = None
    margin_reason: str = ""  # why this margin, in one line (the glossary shows it)
    #: how two priors' values are compared: "" as differences in the metric's units, "log" as log
    #: ratios (the margin is then a log ratio: a relative margin, for a metric whose scale varies
    #: between data sets, e.g. MSE)
    scale: str = ""


def _m(name: str, label: str, unit: str, better: str, group: str, definition: str, panel: bool = False,
       bounds: tuple = (None, None), note: str = "", margin: float | None = None, why: str = "",
       scale: str = "") -> Metric:
    return Metric(name, label, unit, better, group, definition, panel, bounds, note, margin, why, scale)


# Equivalence margins several metrics share (``Metric.margin`` and its reason).
_NATS = dict(margin=0.5, why="half a nat per example (a likelihood ratio of 1.6): below the 1-2 nats that "
                             "separate a VAE from an IWAE on MNIST (Burda et al.), the smallest gap the "
                             "literature reports between inference schemes")
_COUNT = dict(margin=0.5, why="counts move by whole dimensions: under half a dimension on average is no change")
_COSINE = dict(margin=0.05, why="a few degrees between a template and its match (|cos| 0.90 -> 0.85 is 26 -> 32 "
                                "degrees)")
_FIELDS = dict(margin=0.05, why="one field in twenty: the smallest share of a dictionary's fields whose change of "
                                "shape a receptive-field study would report")
#: label information, per dimension: a priori from what a label holds, log 10 = 2.30 nats for the ten
#: classes of every labelled data set of the study (digits, MNIST, CIFAR)
_LABEL = dict(margin=0.05, why="0.05 nats, about 2% of the 2.30 nats (log 10) a ten-class label holds: the "
                               "smallest gain in one dimension's information worth reporting")
_LABEL_TOTAL = dict(margin=0.1, why="0.1 nats, about 4% of the 2.30 nats (log 10) a ten-class label holds: twice "
                                    "one dimension's margin, since a sum over dimensions adds their errors")


#: scalar metrics of metrics.json, in report order (metrics.csv columns, summary tables).
METRICS: tuple[Metric, ...] = (
    _m("elbo", "test ELBO", "nats/example", "higher", "fit",
       "mean over examples of recon_log_lik - kl, nats per example; undefined (null, with the reason) for "
       "a Cauchy posterior, whose E_q[log p(x|z)] diverges with our decoders", panel=True,
       note="a lower bound on log p(x); the IWAE log-likelihood is a tighter one (>= ELBO) and is defined "
            "for every posterior family",
       **_NATS),
    _m("recon_log_lik", "reconstruction log-lik", "nats/example", "higher", "fit",
       "E_q[log p(x|z)] in nats per example, Monte Carlo over the same iwae_samples draws z ~ q(z|x) "
       "that the IWAE bound uses; undefined (null) for a Cauchy posterior: the expectation diverges when "
       "log p(x|z) falls at least linearly in |z| (ReLU-MLP Bernoulli logits, Gaussian likelihood)",
       **_NATS),
    _m("kl", "KL(q||p)", "nats/example", "", "fit",
       "KL(q(z|x) || p(z)) summed over dimensions, nats per example; closed form where the pair has one "
       "(see evaluation_kl), whatever estimator training used",
       bounds=(0, None), note="no preferred direction: a small KL can mean an unused latent space as well as a good fit",
       **_NATS),
    _m("iwae_log_lik", "IWAE log-likelihood", "nats/example", "higher", "fit",
       "mean over examples of log (1/K) sum_k p(x|z_k) p(z_k) / q(z_k|x), z_k ~ q(z|x), K = iwae_samples; "
       "a lower bound on log p(x) that is >= elbo in expectation; finite for a Cauchy posterior too, so it "
       "is what likelihood is ranked by", panel=True,
       **_NATS),
    _m("iwae_samples", "IWAE samples K", "samples", "", "fit",
       "K, the importance samples per example behind iwae_log_lik and recon_log_lik"),
    _m("exact_log_lik", "exact log-likelihood", "nats/example", "higher", "fit",
       "log p(x) in closed form, mean over the IWAE's examples: N(x; b, W diag(s^2) W^T + diag(sigma^2)) "
       "for a linear decoder, Gaussian likelihood and normal prior (analysis.exact); null for any other model",
       note="the answer the IWAE and ELBO bounds estimate from below",
       **_NATS),
    _m("iwae_gap_exact", "exact - IWAE", "nats/example", "lower", "fit",
       "exact_log_lik - iwae_log_lik on the same examples: >= 0 up to Monte Carlo error; how loose the "
       "IWAE bound (and the amortised posterior) is; null where there is no exact value",
       note="a negative value beyond Monte Carlo error would be a bug",
       margin=0.5, why="on the scale of the likelihoods it subtracts (half a nat per example)"),
    _m("mse", "reconstruction MSE", "pixel MSE", "lower", "fit",
       "mean over test examples and pixels of (x - decode(posterior location))^2, data space; the location "
       "is the posterior median for a Cauchy too, so this ranks reconstruction for every family",
       panel=True,
       bounds=(0, None), scale="log",
       margin=0.0953, why="compared as log ratios: a 10% change of MSE (log 1.1 = 0.095, 0.41 dB of PSNR), "
                          "below which two reconstructions are not told apart by eye; relative, since MSE "
                          "scales with each data set's pixel variance and noise"),
    _m("mse_mean_image", "mean-image MSE (reference)", "pixel MSE", "", "fit",
       "mean over test examples and pixels of (x - the training split's mean image)^2: what a model that "
       "ignores its input reconstructs; the same for every run of a data set",
       bounds=(0, None), scale="log",
       note="the reference of conclusion 1's 'fairly well' (test MSE at most half of it)"),
    _m("used_units", "used units", "dims (count)", "", "latent_use",
       "number of USED dimensions: used_ratio > used_ratio_threshold (see per_dimension used_ratio); "
       "scale-free (multiplying a dimension's location and scale by a constant keeps its status) and "
       "defined for Gaussian and Cauchy posteriors alike; conventional: the USED set is used_dims's",
       panel=True, bounds=(0, "L"),
       note="how many dimensions tell inputs apart by more than their own posterior uncertainty; unlike "
            "Burda's count it does not depend on the scale a prior gives the latent space",
       **_COUNT),
    _m("active_units", "active units (Burda: Var_x E_q[z] > 0.01)", "dims (count)", "", "latent_use",
       "number of dimensions with location_variance > active_threshold (Burda et al.), for comparison "
       "with the literature; depends on each dimension's scale, so it masks no other metric",
       bounds=(0, "L"), note="an absolute variance threshold: a model that shrinks location and scale "
                             "together (a Cauchy posterior) reads inactive though it carries information; "
                             "used units is the scale-free count",
       **_COUNT),
    _m("active_units_kl", "dims with KL above its floor", "dims (count)", "", "latent_use",
       "number of dimensions whose mean KL over the test set > kl_floor + kl_threshold; kl_floor "
       "(settings) is the smallest KL an input-independent posterior of the run's family reaches "
       "against its prior: 0 for gaussian/normal and cauchy/cauchy, 0.0484 nats for gaussian/Laplace(0,1)",
       bounds=(0, "L"), note="a dimension can pay KL without moving with x (a posterior narrower than the "
                             "prior); KL above the family's floor counts dimensions that spend information",
       **_COUNT),
    _m("frac_near_zero", "near-zero codes", "fraction", "higher", "sparsity",
       "fraction of |loc_d - median_d| < sparsity_threshold * IQR_d over test examples and USED "
       "dimensions d (each in units of its own spread; a Laplace code beats a Gaussian one of equal IQR: "
       "0.129 vs 0.107 at 0.1); null when no dimension is used",
       bounds=(0, 1), note="relative to each used dimension's spread, so a prior's scale does not matter",
       margin=0.01, why="under half the 0.022 by which an ideal Laplace code beats a Gaussian one at "
                        "threshold 0.1"),
    _m("hoyer", "Hoyer sparsity", "index in [0, 1]", "higher", "sparsity",
       "mean over test examples of the Hoyer sparsity (sqrt(n) - L1/L2) / (sqrt(n) - 1) of the code "
       "restricted to the n USED dimensions, each standardised as (loc_d - median_d) / IQR_d: 1 one-hot, "
       "0 constant; collapsed dimensions do not count as sparsity; null with fewer than 2 used dims",
       panel=True,
       bounds=(0, 1), note="scale-free: each used dimension is measured in units of its own spread",
       margin=0.04, why="under half the 0.085-0.097 by which ideal Laplace codes of 4-40 used dims beat "
                        "Gaussian ones"),
    _m("kurtosis_mean", "latent kurtosis", "excess kurtosis", "higher", "sparsity",
       "mean over USED dimensions of the per-dimension kurtosis (see per_dimension kurtosis)",
       bounds=(-2, None),
       margin=0.5, why="a sixth of the excess-kurtosis gap (3) between a Laplace and a Gaussian code"),
    _m("probe_accuracy", "linear probe accuracy", "fraction", "higher", "labels",
       "stratified k-fold (probe_folds, shuffled, random_state 0) accuracy of a per-dimension rank "
       "transform (normal quantile of each value's mid-rank in the training fold; analysis.ranks) + "
       "LogisticRegression on all posterior locations jointly: informativeness that does not count "
       "redundant dimensions twice, and does not depend on a dimension's marginal shape", panel=True,
       bounds=(0, 1), note="compare with the probe chance level of the same dataset",
       margin=0.01, why="one percentage point of accuracy, the smallest change probe comparisons report"),
    _m("probe_accuracy_best_dim", "probe accuracy, best single dim", "fraction", "higher", "labels",
       "the largest over dimensions of the same probe's accuracy from that one dimension alone",
       bounds=(0, 1),
       margin=0.01, why="one percentage point of accuracy, the smallest change probe comparisons report"),
    _m("probe_chance", "probe chance level", "fraction", "", "labels",
       "frequency of the most common label",
       bounds=(0, 1)),
    _m("mi_label_max", "MI(z; label), best dim", "nats", "higher", "labels",
       "largest per-dimension mutual information with the label (see per_dimension mi_label)",
       bounds=(0, None),
       **_LABEL),
    _m("template_weight_corr", "template-weight correlation", "correlation", "higher", "ground_truth",
       "mean over true weights k of |Pearson r(w_k, loc_j(k))|, j(k) the latent dim matched to weight k "
       "one-to-one (scipy linear_sum_assignment maximising the summed |r|; no dim counts twice)",
       panel=True,
       bounds=(0, 1),
       **_COSINE),
    _m("template_weight_r2", "template-weight R²", "R²", "higher", "ground_truth",
       "R^2 (uniform average over weights) of a linear regression from locations to true weights, fit on "
       "the first half of the test split, scored on the second",
       bounds=(None, 1),
       margin=0.05, why="5% of the weights' variance explained"),
    _m("template_matched_cos", "template-decoder |cos|, one-to-one", "cosine", "higher", "ground_truth",
       "mean over true templates k of |cosine(template_k, decode(a e_j) - decode(0))| for the USED dim j "
       "matched to k one-to-one (linear_sum_assignment; a template left without a used dim scores 0), "
       "a = sd of loc_j; on the positive control (linear decoder): decoder columns against the true W",
       bounds=(0, 1),
       **_COSINE),
    _m("ica_matched_cos", "FastICA |cos|, one-to-one", "cosine", "higher", "ground_truth",
       "positive control only: the same matched |cos| for scikit-learn FastICA's mixing columns fitted "
       "on the training data, the reference for what is recoverable from x alone",
       bounds=(0, 1),
       **_COSINE),
    _m("rf_localization", "RF localization", "index in [0, 1] (1 = one pixel)", "higher", "decoder",
       "mean over used dims of 1 - (PR - 1) / (D - 1), PR = (sum rf^2)^2 / sum rf^4 the participation "
       "ratio (effective number of pixels) of the receptive field in pixel space; 1 = one pixel, 0 = "
       "energy spread evenly over all D pixels", panel=True,
       bounds=(0, 1),
       margin=0.05, why="a twentieth of the index's [0, 1] range"),
    _m("rf_fields_fitted", "fields fitted (used decoder columns)", "dims (count)", "", "decoder",
       "number of decoder columns the field fits below describe: those of the USED dims, linear decoder, "
       "grey natural-image patches only (null otherwise, with the reason)",
       bounds=(0, "L"), note="the field fractions are fractions of this many columns",
       **_COUNT),
    _m("rf_gabor_fraction", "Gabor-like fields", "fraction", "higher", "decoder",
       "fraction of the used linear-decoder columns (reshaped to the patch, data space) that a Gabor fit "
       "describes (R^2 >= 0.7, better than the DoG fit by more than 0.02) and that are localised (envelope "
       "width across the stripes, 2 sx, at most half the patch side; analysis.fields); the sparse-coding "
       "dictionary baseline gets the same fits", panel=True,
       bounds=(0, 1), note="localised, oriented fields: what sparse coding of whitened natural patches learns",
       **_FIELDS),
    _m("rf_dog_fraction", "centre-surround fields", "fraction", "", "decoder",
       "fraction of the used decoder columns that a concentric difference of Gaussians (centre inside the "
       "patch; the surround of EITHER sign, so plain blobs count: see rf_center_surround_fraction for the "
       "retina-like, opposite-sign reading) describes with R^2 >= 0.7 and at least as well as a Gabor, within 0.02",
       bounds=(0, 1),
       **_FIELDS),
    _m("rf_extended_fraction", "extended (grating) fields", "fraction", "", "decoder",
       "fraction of the used decoder columns that a Gabor fit describes (R^2 >= 0.7) but that are not "
       "localised: gratings or ramps across the patch",
       bounds=(0, 1), note="what a rotation-invariant (normal) prior's PCA-like columns tend to be",
       **_FIELDS),
    _m("rf_unfitted_fraction", "fields fitted by neither", "fraction", "lower", "decoder",
       "fraction of the used decoder columns with both fits below R^2 = 0.7 (noise-like or mixed)",
       bounds=(0, 1),
       **_FIELDS),
    _m("rf_gabor_r2_median", "median Gabor-fit R²", "R²", "higher", "decoder",
       "median over the used decoder columns of the Gabor fit's R^2 (1 - SS_res / SS_tot)",
       bounds=(None, 1),
       margin=0.05, why="0.05 of R^2, small beside the 0.7 that counts a field as fitted"),
    _m("rf_gabor_median_freq", "Gabor-like field frequency", "cycles/pixel", "", "decoder",
       "median spatial frequency f of the Gabor-like used columns; null when none is Gabor-like",
       bounds=(0, None),
       margin=0.02, why="about a tenth of the 0.1-0.25 cycles/pixel of V1-like fields in 12x12 patches"),
    _m("rf_center_surround_fraction", "centre-surround decoder fields", "fraction", "higher", "decoder",
       "fraction of the USED dims whose decoder field (decode(s e_j) - decode(-s e_j), pixel space) is "
       "centre-surround: an opposite-sign difference of Gaussians (surround volume 0.2-2 x the centre's, "
       "centre inside the patch) fits it with R^2 >= 0.7, beats a single isotropic Gaussian blob by at "
       "significantly more than the blob (F test of the surround's 2 parameters, alpha 0.01) and a Gabor within 0.02 of R^2 (analysis.center_surround); unwhitened grey natural-image "
       "patches only (whitening is itself a centre-surround filter)", panel=True,
       bounds=(0, 1), note="retina-like (ganglion-cell) fields; unlike rf_dog_fraction, a plain blob does not count",
       margin=0.1, why="one field in ten: about 1-2 of the up to 16 used latents of the natural-image study"),
    _m("rf_enc_center_surround_fraction", "centre-surround encoder fields", "fraction", "higher", "decoder",
       "as rf_center_surround_fraction, for each used dim's encoder field: the principal per-input gradient "
       "of its posterior location with respect to the image over the evaluated test inputs (leading "
       "eigenvector of E_x[g g^T], g = d loc_j / dx, scaled by its root eigenvalue; analysis.sensitivity; a "
       "linear encoder's weight row), which opposite-signed local filters cannot cancel in as in the "
       "input-averaged gradient -- what the latent responds to, as a neuron's receptive field",
       bounds=(0, 1), note="the receptive field in the physiological sense (stimulus -> response)",
       margin=0.1, why="one field in ten: about 1-2 of the up to 16 used latents of the natural-image study"),
    _m("rf_cs_detection_rate", "centre-surround detection rate, decoder fields", "fraction", "", "decoder",
       "the floor-effect check of rf_center_surround_fraction: the share of constructed opposite-sign DoGs "
       "(surround 0.3, 0.5, 0.7, 1 x the centre's volume; 4 shapes each) the classifier labels centre-surround "
       "when white noise makes up the share of their variance that the run's decoder fields leave "
       "unexplained by their best fit (median over the used dims; analysis.center_surround.detection_rate)",
       bounds=(0, 1), note="low: the fields are too noisy for the test to see a surround, so a fraction of 0 "
                           "means 'not observed; the test could not detect it'"),
    _m("rf_enc_cs_detection_rate", "centre-surround detection rate, encoder fields", "fraction", "", "decoder",
       "rf_cs_detection_rate at the unexplained share of the run's encoder fields (rf_enc_center_surround_fraction)",
       bounds=(0, 1)),
    _m("rf_cs_detectable", "centre-surround detectable, decoder fields", "flag (1 = yes)", "", "decoder",
       f"1 when rf_cs_detection_rate >= {RETINA_DETECTABLE_RATE:g}, else 0: whether a 0 "
       "rf_center_surround_fraction can read as 'not centre-surround' rather than 'could not detect'",
       bounds=(0, 1)),
    _m("rf_enc_cs_detectable", "centre-surround detectable, encoder fields", "flag (1 = yes)", "", "decoder",
       f"1 when rf_enc_cs_detection_rate >= {RETINA_DETECTABLE_RATE:g}, else 0 (as rf_cs_detectable, for the encoder "
       "fields)", bounds=(0, 1)),
    _m("dims_used_2d", "dims used (2-D latent)", "dims (count)", "", "latent_use",
       "used_units when the latent space is 2-D (the talk: Laplace uses one dimension)", panel=True,
       **_COUNT,
       bounds=(0, "L"), note="the scale-free used-units count of a 2-D model"),
    # -- metrics of the stochastic code, in nats (analysis.information, analysis.ais; issue 22) --------
    _m("used_dims", f"used dims (rate > {USED_RATE_NATS:g} nats)", "dims (count)", "", "latent_use",
       f"number of USED dimensions: per_dimension rate I(x; z_d) > {USED_RATE_NATS:g} nats, the headline threshold: "
       "Geadah et al.'s criterion for an uncollapsed latent (KL > 0.1 nats), applied to the rate, which "
       "unlike the KL has no family floor, and well above the rate estimator's Monte Carlo error (two "
       "seeds differ by 0.002 nats median, 0.02 at most, on offline digits and natural12 runs); the set "
       "every per-dimension summary reads", panel=True, bounds=(0, "L"), **_COUNT,
       note="information in nats, so the same count for Gaussian and Cauchy posteriors and for "
            "dimensions active in few inputs (a spike-and-slab dim used by 30% of inputs counts)"),
    _m("used_dims_001", "used dims (rate > 0.01 nats)", "dims (count)", "", "latent_use",
       "number of dimensions with rate > 0.01 nats: near the estimator's noise, an upper count",
       bounds=(0, "L"), **_COUNT),
    _m("used_dims_050", "used dims (rate > 0.5 nats)", "dims (count)", "", "latent_use",
       "number of dimensions with rate > 0.5 nats: dimensions that each carry a substantial amount",
       bounds=(0, "L"), **_COUNT),
    _m("used_dims_2d", f"used dims, 2-D latent (rate > {USED_RATE_NATS:g} nats)", "dims (count)", "", "latent_use",
       "used_dims when the latent space is 2-D (the talk: Laplace uses one dimension); what conclusion 4 "
       "is judged on", panel=True, bounds=(0, "L"), **_COUNT),
    _m("active_at_once", "dims active at once / used", "fraction", "lower", "sparsity",
       "mean over test examples of the fraction of USED dims d active for that input: "
       "KL(q(z_d|x) || p(z_d)) - kl_floor > at_once_threshold nats, the prior as the reference (a dim "
       "at rest leaves its posterior at the prior); the talk's 'how many latent variables are active at "
       "once', per used dim; null without used dims", panel=True, bounds=(0, 1),
       margin=0.05, why="one in twenty used dims active at once: half a dim of a 10-dim code",
       note="lower is sparser: each input engages a smaller share of the dims the model uses; a dense "
            "Gaussian code scores ~1"),
    _m("hoyer_excess", "Hoyer excess over a Gaussian code", "index difference", "higher", "sparsity",
       "mean over test examples of the Hoyer index of the USED dims' locations, each centred on its median "
       "and scaled by its mean absolute deviation, minus E Hoyer of an i.i.d. Gaussian code of as many "
       "dims (0.338 for 2, 0.267 for 10): 0 for any Gaussian code; null with fewer than 2 used dims",
       bounds=(-1, 1), margin=0.02, why="under a quarter of the 0.085-0.097 by which ideal Laplace codes beat "
       "Gaussian ones of 4-40 dims", note="the plain Hoyer index falls with the number of dims, so a prior using fewer "
                            "dims looked sparser at no cost; the excess does not"),
    _m("hoyer_excess_sampled", "Hoyer excess, sampled code", "index difference", "higher", "sparsity",
       "hoyer_excess on one draw z ~ q(z|x) per example (the first n_eval examples; the draw "
       "probe_accuracy_sampled reads) instead of the locations: the sparsity of the code the decoder "
       "receives, the same family of code the informativeness metrics read; null with fewer than 2 used dims",
       bounds=(-1, 1), note="a dim at rest in an input still draws its posterior's noise here, so a code "
                            "sparse only in its locations does not count",
       margin=0.02, why="as hoyer_excess: under a quarter of the 0.085-0.097 by which ideal Laplace codes beat "
                        "Gaussian ones of 4-40 dims"),
    _m("label_info_mean", "label information per used dim", "nats", "higher", "labels",
       "mean over USED dims of per_dimension label_info, I(y; z_d) of the sampled code z ~ q(z|x); "
       "null without labels", bounds=(None, None),
       note="<= the dim's rate (and its KL), unlike the kNN estimate on locations (mi_label_max); depends "
            "on the 'used' threshold (issue 34): conclusion 2 reads the threshold-free label_info_total, "
            "label_info_top1 and label_info_auc where the runs have them", **_LABEL),
    _m("label_info_max", "label information, best used dim", "nats", "higher", "labels",
       "largest per_dimension label_info over USED dims, nats", bounds=(None, None), **_LABEL),
    _m("probe_accuracy_sampled", "linear probe accuracy, sampled code", "fraction", "higher", "labels",
       "the probe_accuracy probe (same folds) on one draw z ~ q(z|x) per example instead of the "
       "location: how much label the code the decoder receives carries", bounds=(0, 1),
       margin=0.01, why="one percentage point of accuracy, the smallest change probe comparisons report",
       note="probe_accuracy on locations is the conventional representation metric"),
    _m("probe_accuracy_sampled_additive", "additive probe accuracy, sampled code", "fraction", "higher", "labels",
       "as probe_accuracy_sampled (same draw, same folds) with an additive logistic probe: class logits "
       "sum_d f_cd(z_d), each f a cubic spline (8 uniform knots) of the dim's training-fold rank "
       "(analysis.metrics.additive_probe): the form of the Bayes classifier of a code whose dims are "
       "independent given the label, for any family; unchanged by increasing maps of a dim",
       bounds=(0, 1),
       note="on the known-answer toys (analysis.estimator_controls) it falls about as far below the Bayes "
            "accuracy for a Cauchy code as for a Gaussian one; the linear probe does not",
       margin=0.01, why="one percentage point of accuracy, the smallest change probe comparisons report"),
    _m("label_info_total", "label information, all dims", "nats", "higher", "labels",
       "sum over ALL dims of per_dimension label_info (no used threshold): the label information the code "
       "carries dim by dim (redundant dims count twice; see probe_accuracy_sampled_additive for the joint "
       "code); null without labels", bounds=(None, None),
       note="threshold-free: label_info_mean's order could reverse between used thresholds", **_LABEL_TOTAL),
    _m("label_info_top1", "label information, top dim", "nats", "higher", "labels",
       "largest per_dimension label_info over ALL dims (no used threshold), nats", bounds=(None, None), **_LABEL),
    _m("label_info_top2", "label information, top 2 dims", "nats", "higher", "labels",
       "sum of the two largest per_dimension label_info over ALL dims (k = 2, the study's smallest latent "
       "size, so every run has it), nats", bounds=(None, None), **_LABEL_TOTAL),
    _m("label_info_auc", "label information, area over rate thresholds", "nats", "higher", "labels",
       "area under S(t) over rate thresholds t in [0, 1] nat, S(t) the summed per_dimension label_info of the "
       "dims with rate > t (the curve is metrics.json curves.label_info_above_rate), as the mean of S over "
       "t = 0, 0.01, ..., 1 (the area divided by the 1-nat span, so nats): no single threshold decides it",
       bounds=(None, None), margin=_LABEL["margin"], why=_LABEL["why"] + " (the area is a mean over thresholds, in nats)"),
    _m("ais_log_lik", "AIS log-likelihood", "nats/example", "higher", "fit",
       "annealed importance sampling estimate of log p(x), mean over the first ais_examples test examples "
       "(ais_chains chains each, ais_steps steps of a sigmoid schedule from q(z|x) to p(x, z), one HMC "
       "transition of ais_leapfrog leapfrog steps each, step sizes fixed by a pilot run; analysis.ais); "
       "linear-decoder runs and the training-control datasets (sources sparse_linear, synthetic) only "
       "(null otherwise); its cost is in the analyze log (timings: ais)", panel=True, **_NATS,
       note="a stochastic lower bound, tighter than IWAE; within 0.05 nats of the exact value in the tests"),
    _m("ais_minus_iwae", "AIS - IWAE", "nats/example", "", "fit",
       "ais_log_lik - the IWAE bound on the same examples: how much the IWAE bound misses", **_NATS),
    _m("ais_gap_exact", "exact - AIS", "nats/example", "lower", "fit",
       "exact_log_lik - ais_log_lik on the AIS examples: >= 0 up to Monte Carlo error; null where there "
       "is no exact value", note="a negative value beyond Monte Carlo error would be a bug", **_NATS),
)

#: per-dimension arrays of metrics.json["per_dimension"], name -> definition.
PER_DIMENSION = {
    "kl": "KL(q || p) of each dimension, mean over the test split, nats per example",
    "location_variance": "Var over test examples of the posterior location (the median for a Cauchy)",
    "used_ratio": "half-IQR over test examples of the posterior location / median over test examples of "
                  "the posterior's own half-IQR (0.6745 sd for a Gaussian, the scale for a Cauchy): how far "
                  "the code moves between inputs in units of its uncertainty",
    "kurtosis": "excess (Fisher) kurtosis over test examples of each dimension's location; null for a "
                "dimension that does not vary",
    "mi_label": "sklearn mutual_info_classif(locations, labels, random_state=0) per dimension, nats; "
                "null without labels",
    "rate": "I(x; z_d) = E_x KL(q(z_d|x) || q(z_d)), q(z_d) the aggregate posterior (mixture) over the first "
            "info_examples test examples, exact component densities, Monte Carlo over z (info_draws "
            "stratified draws per example); nats, at most log info_examples",
    "label_info": "I(y; z_d) of the sampled code from class-split mixtures of the same posteriors, each "
                  "example's own component left out (so it estimates the population value, <= the rate "
                  "up to Monte Carlo error); nats; null without labels",
}

#: terms the definitions use.
TERMS = {
    "subsets": "all test examples for posterior-location statistics (used and active units, KL per dimension, "
               "sparsity, kurtosis, template recovery, mse); the first max_examples test examples for "
               "elbo, recon_log_lik, kl, iwae_log_lik, probe and mutual information",
    "receptive_field": "rf_j = decode(s e_j) - decode(-s e_j), s = sd of loc_j (1 if it is ~0), data space",
    "used": f"USED dimensions: per_dimension rate > {USED_RATE_NATS:g} nats (used_dims); the set the sparsity, label "
            "information, receptive-field and template metrics read",
}

#: training figures the report takes from train.json: name -> (label, unit).
TRAINING = {
    "train_loss_selected": ("train loss, kept epoch", "nats/example"),
    "test_loss_selected": ("test loss, kept epoch", "nats/example"),
    "test_recon_selected": ("test reconstruction, kept epoch", "nats/example"),
    "test_kl_selected": ("test KL, kept epoch", "nats/example"),
    "val_iwae_selected": ("validation IWAE, kept epoch", "nats/example"),
    "selected_epoch": ("kept epoch (best validation IWAE)", "epoch"),
    "converged": ("converged by the stopping rule", ""),
    "lr": ("learning rate (grid winner)", ""),
    "train_loss_first_epoch": ("first-epoch train loss", "nats/example"),
    "val_iwae_first_epoch": ("first-epoch validation IWAE", "nats/example"),
    "epochs": ("epochs", "epochs"),
    "duration_s": ("training time", "s"),
    "samples_per_s": ("training throughput", "samples/s"),
}

SCALAR_METRICS: tuple[str, ...] = tuple(m.name for m in METRICS)
_BY_NAME = {m.name: m for m in METRICS}



def margin_of(name: str) -> tuple[float | None, str]:
    """(margin, why) of a metric: its catalogue row's, else (None, "")."""
    if name in _BY_NAME:
        return _BY_NAME[name].margin, _BY_NAME[name].margin_reason
    return None, ""


def metric(name: str) -> Metric:
    """The catalogue row of a scalar metric (KeyError for a name the catalogue does not hold)."""
    return _BY_NAME[name]


def label(name: str) -> str:
    """Display label of a metric or training figure; the name itself for anything else."""
    if name in _BY_NAME:
        return _BY_NAME[name].label
    return TRAINING[name][0] if name in TRAINING else name


def unit(name: str) -> str:
    """Unit of a metric or training figure; "" for anything else."""
    if name in _BY_NAME:
        return _BY_NAME[name].unit
    return TRAINING[name][1] if name in TRAINING else ""


def direction(better: str) -> str:
    """A metric's ``better`` in words: "higher is better", "lower is better", or "no better direction"."""
    return f"{better} is better" if better in ("higher", "lower") else "no better direction"


def value_range(name: str, latent: int) -> tuple[float, float]:
    """(low, high) a metric can take at this latent size; (-inf, inf) where unbounded or unknown."""
    low, high = _BY_NAME[name].bounds if name in _BY_NAME else (None, None)
    resolve = {None: None, "L": float(latent)}
    low = -math.inf if low is None else float(resolve.get(low, low))
    high = math.inf if high is None else float(resolve.get(high, high))
    return low, high


def definitions() -> dict[str, str]:
    """Every definition, keyed by name: terms, scalar metrics, per-dimension arrays (metrics.json)."""
    out = dict(TERMS)
    out.update((m.name, m.definition) for m in METRICS)
    out.update(PER_DIMENSION)
    return out
