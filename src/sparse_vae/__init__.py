"""Sparse variational autoencoders: normal, Laplace and Cauchy priors, and the study around them."""

__version__ = "0.1.0"
