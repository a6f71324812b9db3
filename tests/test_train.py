"""Training: loss goes down, runs are deterministic, a killed run resumes exactly, NaN stops loudly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from sparse_vae.data.io import Dataset, save_dataset
from sparse_vae.errors import TrainingDiverged
from sparse_vae.model_io import load_model
from sparse_vae.train import train_run

torch.set_num_threads(1)
LOSS_COLUMNS = ["train_loss", "train_recon", "train_kl", "val_loss", "val_recon", "val_kl", "val_iwae"]


def template_images(n: int, seed: int = 0) -> np.ndarray:
    """5x5 images = 0.5 + sparse weights x two bar templates / 4 + noise, all inside [0, 1]."""
    rng = np.random.default_rng(seed)
    templates = np.zeros((2, 25), np.float32)
    templates[0, 10:15] = 1.0
    templates[1, 2::5] = 1.0
    weights = np.clip(rng.laplace(0, 0.5, (n, 2)), -1.5, 1.5).astype(np.float32)
    x = 0.5 + (weights @ templates) / 4 + rng.normal(0, 0.02, (n, 25)).astype(np.float32)
    return np.clip(x, 0, 1).astype(np.float32)


@pytest.fixture(scope="module")
def data_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "toy.npz"
    save_dataset(path, Dataset(template_images(1024), template_images(256, seed=1), (5, 5),
                               metadata={"source": "synthetic"}))
    return path


ENTRIES = {"normal": ("normal", "gaussian"), "laplace": ("laplace", "gaussian"), "cauchy": ("cauchy", "cauchy"),
           "cauchy_gauss": ("cauchy", "gaussian")}


def make_spec(prior: str = "laplace", epochs: int = 4, kl: str = "closed_form", **train) -> dict:
    family, posterior = ENTRIES[prior]
    return {
        "dataset": "toy", "latent": 2, "seed": 7,
        "prior": {"name": prior, "family": family, "posterior": posterior, "scale": 1.0, "kl": kl,
                  "kl_samples": 1, "objective": "iwae" if posterior == "cauchy" else "elbo",
                  "objective_samples": 4 if posterior == "cauchy" else 1},
        "model": {"hidden": [16], "decoder": "mlp", "likelihood": "gaussian", "obs_scale": "learned"},
        "train": {"epochs": epochs, "batch_size": 32, "lr": 3e-3, "checkpoint_every": 1, "patience": 1000,
                  "min_delta": 0.0, "val_iwae_samples": 8, **train},
    }


def losses(run_dir: Path) -> pd.DataFrame:
    return pd.read_csv(run_dir / "history.csv")[["epoch", *LOSS_COLUMNS]]


@pytest.mark.parametrize("prior", ["normal", "laplace", "cauchy", "cauchy_gauss"])
def test_training_lowers_the_loss(data_file: Path, tmp_path: Path, prior: str) -> None:
    kl = "monte_carlo" if prior == "cauchy_gauss" else "closed_form"
    summary = train_run(data_file, make_spec(prior, epochs=6, kl=kl), tmp_path)
    history = losses(tmp_path)
    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0] - 1.0
    assert history["val_iwae"].iloc[-1] > history["val_iwae"].iloc[0]
    assert summary["epochs"] == 6 and summary["spec"]["prior"]["name"] == summary["prior"] == prior
    assert (summary["family"], summary["posterior"]) == ENTRIES[prior]
    checkpoint = load_model(tmp_path / "model.pt")[1]
    assert (checkpoint["family"], checkpoint["posterior"]) == ENTRIES[prior]
    assert not (tmp_path / "checkpoint.pt").exists()
    assert json.loads((tmp_path / "train.json").read_text())["final"]["val_iwae"] == pytest.approx(
        history["val_iwae"].iloc[-1])


def test_same_seed_same_numbers(data_file: Path, tmp_path: Path) -> None:
    train_run(data_file, make_spec(kl="monte_carlo"), tmp_path / "a")
    train_run(data_file, make_spec(kl="monte_carlo"), tmp_path / "b")
    pd.testing.assert_frame_equal(losses(tmp_path / "a"), losses(tmp_path / "b"), check_exact=True)
    model_a, _ = load_model(tmp_path / "a" / "model.pt")
    model_b, _ = load_model(tmp_path / "b" / "model.pt")
    for (name, a), (_, b) in zip(model_a.state_dict().items(), model_b.state_dict().items()):
        assert torch.equal(a, b), name


def kill_at_first_checkpoint(data_file: Path, spec: dict, run_dir: Path, device: str) -> list[str]:
    """Start `sparse-vae train` in a subprocess and SIGKILL it once its first checkpoint exists; returns
    the command, to rerun it."""
    command = [sys.executable, "-m", "sparse_vae", "train", "--data", str(data_file),
               "--spec", json.dumps(spec), "--run-dir", str(run_dir), "--threads", "1", "--device", device]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (run_dir / "checkpoint.pt").exists():
        assert process.poll() is None, "training finished before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    return command


CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=CUDA)])
def test_killed_run_resumes_to_identical_results(data_file: Path, tmp_path: Path, device: str) -> None:
    spec = make_spec("cauchy", epochs=30, lr=[3e-3, 1e-2] if device == "cuda" else 3e-3)
    train_run(data_file, spec, tmp_path / "uninterrupted", device=device)

    run_dir = tmp_path / "killed"
    command = kill_at_first_checkpoint(data_file, spec, run_dir, device)
    assert not (run_dir / "model.pt").exists() and not (run_dir / "train.json").exists()

    resumed = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from" in resumed.stdout
    pd.testing.assert_frame_equal(losses(tmp_path / "uninterrupted"), losses(run_dir), check_exact=True)
    model_a, _ = load_model(tmp_path / "uninterrupted" / "model.pt")
    model_b, _ = load_model(run_dir / "model.pt")
    for (name, a), (_, b) in zip(model_a.state_dict().items(), model_b.state_dict().items()):
        assert torch.equal(a, b), name


def test_checkpoint_of_other_settings_is_not_resumed(data_file: Path, tmp_path: Path) -> None:
    spec = make_spec(epochs=3)
    train_run(data_file, spec, tmp_path / "fresh")
    run_dir = tmp_path / "stale"
    train_run(data_file, make_spec(epochs=3, lr=1e-2), run_dir)
    (run_dir / "model.pt").unlink()
    # A checkpoint left by the lr=1e-2 run must not leak into the lr=3e-3 run.
    from sparse_vae.train import Trainer, fingerprint_of  # noqa: PLC0415

    x = template_images(1024)
    x_test = template_images(256, seed=1)
    trainer = Trainer(make_spec(epochs=3, lr=1e-2), torch.from_numpy(x), torch.from_numpy(x_test),
                      torch.device("cpu"), fingerprint_of(make_spec(epochs=3, lr=1e-2), x, x_test),
                      run_dir / "checkpoint.pt")
    trainer.fit()
    trainer.save_checkpoint()
    train_run(data_file, spec, run_dir)
    pd.testing.assert_frame_equal(losses(tmp_path / "fresh"), losses(run_dir), check_exact=True)


def test_a_checkpoint_of_another_training_version_is_never_resumed(data_file: Path, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """A run killed under TRAIN = v and rerun under v + 1 discards its checkpoint (one line naming the
    run) and trains afresh: its numbers equal a fresh run's, never a mix of two code versions."""
    from sparse_vae import versions

    spec = make_spec("laplace", epochs=40)
    run_dir = tmp_path / "killed"
    kill_at_first_checkpoint(data_file, spec, run_dir, "cpu")
    monkeypatch.setattr(versions, "TRAIN", versions.TRAIN + 1)
    capsys.readouterr()
    summary = train_run(data_file, spec, run_dir)
    out = capsys.readouterr().out
    assert "discarding checkpoint" in out and "resumed from" not in out
    assert summary["code"]["version"] == versions.TRAIN
    train_run(data_file, spec, tmp_path / "fresh")
    pd.testing.assert_frame_equal(losses(tmp_path / "fresh"), losses(run_dir), check_exact=True)


def test_nan_loss_stops_with_run_epoch_step_and_term(data_file: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from sparse_vae import model as model_module

    real_forward = model_module.VAE.forward
    calls = {"n": 0}

    def poisoned_forward(self, x, kl_weight=1.0):  # the 5th training step's KL goes NaN
        terms = real_forward(self, x, kl_weight)
        calls["n"] += 1
        if self.training and calls["n"] == 5:
            nan = terms.kl * float("nan")
            return type(terms)(terms.loss + nan, terms.recon, nan, terms.kl_per_dim)
        return terms

    monkeypatch.setattr(model_module.VAE, "forward", poisoned_forward)
    with pytest.raises(TrainingDiverged) as error:
        train_run(data_file, make_spec(epochs=2), tmp_path)
    message = str(error.value)
    assert "toy/laplace/z2/seed7" in message and "epoch 1" in message and "step 4" in message
    assert "non-finite kl" in message
    assert not (tmp_path / "model.pt").exists() and not (tmp_path / "train.json").exists()


def test_finite_explosion_stops_like_a_nan(data_file: Path, tmp_path: Path) -> None:
    """#12 defect 8: with lr 1e6 the loss reaches ~1e26 but stays finite; the old code exited 0 and
    wrote model.pt. Now an epoch median batch loss beyond 10 x (|initial loss| + pixels) stops the run."""
    with pytest.raises(TrainingDiverged) as error:
        train_run(data_file, make_spec("normal", epochs=3, lr=1e6), tmp_path)
    message = str(error.value)
    assert "\n" not in message
    assert "run toy/normal/z2/seed7" in message and "epoch 1, step 1" in message
    assert "kl diverged" in message and "limit 10 x (|initial loss" in message
    assert not (tmp_path / "model.pt").exists() and not (tmp_path / "train.json").exists()


def test_divergence_limit_leaves_ordinary_training_alone(data_file: Path, tmp_path: Path) -> None:
    summary = train_run(data_file, make_spec("laplace", epochs=3, lr=1e-2), tmp_path)
    history = pd.read_csv(tmp_path / "history.csv")
    assert summary["divergence_limit"] > 10 * 25
    assert history["train_loss"].abs().max() < summary["divergence_limit"] / 5


def test_one_far_tail_batch_of_a_cauchy_posterior_is_not_divergence(data_file: Path, tmp_path: Path) -> None:
    """A Cauchy posterior with a linear-Gaussian decoder has E_q[log p(x|z)] = -inf: now and then one
    batch draws a far-tail z and its loss is ~1e6 while every other batch is ordinary. The old
    rule (the epoch's mean loss) stopped such runs (tiny preset, natural/cauchy); the median does not."""
    spec = make_spec("cauchy", epochs=3)
    spec["model"].update(decoder="linear", obs_scale=0.1)
    from sparse_vae import model
    real_draw = model.standard_draws

    def one_far_tail_sample(*args, **kwargs):
        eps = real_draw(*args, **kwargs)
        one_far_tail_sample.calls += 1
        if one_far_tail_sample.calls == 5:             # one batch, early in the first epoch
            eps = eps + 1e4
        return eps

    one_far_tail_sample.calls = 0
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(model, "standard_draws", one_far_tail_sample)
        summary = train_run(data_file, spec, tmp_path)
    assert one_far_tail_sample.calls > 5
    assert pd.read_csv(tmp_path / "history.csv")["train_loss"].iloc[0] > summary["divergence_limit"]
    assert (tmp_path / "model.pt").exists()


def test_weights_of_the_best_validation_epoch_are_kept(data_file: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """#12 defect 4: a late far-tail event (here: the decoder's bias knocked off after the last
    epoch's steps) must not decide the model. model.pt holds the best validation epoch's weights,
    which equal those of a run stopped at that epoch; train.json says which epoch and how."""
    from sparse_vae.train import Trainer

    epochs = 6
    real_train_epoch = Trainer.train_epoch

    def knocked_off_at_the_end(self, epoch):
        terms = real_train_epoch(self, epoch)
        if epoch == epochs:
            with torch.no_grad():
                self.model.decoder[-1].bias.add_(0.5)
        return terms

    monkeypatch.setattr(Trainer, "train_epoch", knocked_off_at_the_end)
    summary = train_run(data_file, make_spec(epochs=epochs), tmp_path / "knocked")
    monkeypatch.undo()
    history = pd.read_csv(tmp_path / "knocked" / "history.csv")
    best = int(history.loc[history["val_iwae"].idxmax(), "epoch"])
    assert summary["selection"] == "best_validation_iwae" and summary["selected_epoch"] == best < epochs
    assert summary["validation"]["split"] == "train"
    assert summary["validation"]["n_validation"] + summary["validation"]["n_train_used"] == 1024
    assert summary["selected"]["val_iwae"] == history.loc[best - 1, "val_iwae"]
    assert summary["final"]["val_iwae"] < summary["selected"]["val_iwae"] - 10   # the knock hurt
    saved, checkpoint = load_model(tmp_path / "knocked" / "model.pt")
    assert checkpoint["selected_epoch"] == best
    train_run(data_file, make_spec(epochs=best), tmp_path / "stopped")
    reference, _ = load_model(tmp_path / "stopped" / "model.pt")
    for (name, a), (_, b) in zip(saved.state_dict().items(), reference.state_dict().items()):
        assert torch.equal(a, b), name


def test_progress_log_is_short_with_units_and_eta(data_file: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """#15: about ten progress lines a run (first, every ceil(epochs/10)-th, last), not one per epoch."""
    train_run(data_file, make_spec(epochs=23), tmp_path)
    lines = capsys.readouterr().out.splitlines()
    progress = [line for line in lines if " epoch " in line and "nats/example" in line and "ETA" in line]
    epochs_shown = [int(line.split(" epoch ")[1].split("/")[0]) for line in progress]
    assert epochs_shown == [1, 3, 6, 9, 12, 15, 18, 21, 23]
    assert "ETA 0:00" in progress[-1]
    assert lines[-1].startswith("[toy/laplace/z2/seed7] kept candidate 0 (lr 0.003) at epoch ")
    assert len(pd.read_csv(tmp_path / "history.csv")) == 23


def pack_specs(seeds: tuple[int, ...], epochs: int = 2, **train) -> list[dict]:
    return [{**make_spec("cauchy", epochs=epochs, lr=[1e-3, 3e-3], **train), "seed": seed} for seed in seeds]


def test_a_pack_equals_its_seeds_trained_one_at_a_time(data_file: Path, tmp_path: Path) -> None:
    """A pack of 3 seeds x 2 rates is 3 independent runs: each seed's history, kept weights and
    train.json are those of the seed trained alone (same code), up to the rounding of wider matmuls;
    and the seeds differ from each other (their own init, batches and draws)."""
    from sparse_vae.train import train_pack  # noqa: PLC0415

    specs, columns = pack_specs((1, 2, 3)), ["epoch", "candidate", "lr", *LOSS_COLUMNS]
    packed = train_pack(data_file, specs, [tmp_path / "pack" / f"seed{s['seed']}" for s in specs])
    for spec, summary in zip(specs, packed):
        alone = train_run(data_file, spec, tmp_path / "alone" / f"seed{spec['seed']}")
        a, b = (pd.read_csv(tmp_path / where / f"seed{spec['seed']}" / "history.csv")[columns]
                for where in ("pack", "alone"))
        pd.testing.assert_frame_equal(a, b, rtol=1e-5, check_exact=False)
        model_a, model_b = (load_model(tmp_path / where / f"seed{spec['seed']}" / "model.pt")[0]
                            for where in ("pack", "alone"))
        for (name, x), y in zip(model_a.state_dict().items(), model_b.state_dict().values()):
            torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-6, msg=name)
        assert set(summary) == set(alone) and summary["candidate"] == alone["candidate"]
        assert summary["selected"]["test_iwae"] == pytest.approx(alone["selected"]["test_iwae"], rel=1e-5)
    first, second = (pd.read_csv(tmp_path / "pack" / f"seed{s}" / "history.csv")["train_loss"] for s in (1, 2))
    assert not np.allclose(first, second)


def test_a_killed_pack_resumes_to_identical_results(data_file: Path, tmp_path: Path) -> None:
    """Interrupted after epoch 2 (its checkpoint written) and rerun, a pack finishes exactly as an
    uninterrupted one: every run's history and weights bit for bit."""
    from sparse_vae.train import Trainer, train_pack  # noqa: PLC0415

    class Killed(Exception):
        pass

    specs = pack_specs((1, 2), epochs=4)
    train_pack(data_file, specs, [tmp_path / "whole" / f"seed{s['seed']}" for s in specs])
    dirs = [tmp_path / "killed" / f"seed{s['seed']}" for s in specs]
    original = Trainer.save_checkpoint

    def save_then_die(self: Trainer) -> None:
        original(self)
        if self.state.epoch == 2:
            raise Killed

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Trainer, "save_checkpoint", save_then_die)
        with pytest.raises(Killed):
            train_pack(data_file, specs, dirs)
    assert (dirs[0] / "checkpoint.pt").exists() and not any((d / "model.pt").exists() for d in dirs)
    train_pack(data_file, specs, dirs)
    assert not (dirs[0] / "checkpoint.pt").exists()
    for spec in specs:
        whole, killed = (tmp_path / where / f"seed{spec['seed']}" for where in ("whole", "killed"))
        pd.testing.assert_frame_equal(losses(whole), losses(killed), check_exact=True)
        for (name, a), b in zip(load_model(whole / "model.pt")[0].state_dict().items(),
                                load_model(killed / "model.pt")[0].state_dict().values()):
            assert torch.equal(a, b), name


def test_specs_of_one_pack_may_differ_only_in_seed(data_file: Path, tmp_path: Path) -> None:
    from sparse_vae.train import train_pack  # noqa: PLC0415

    specs = pack_specs((1, 2))
    specs[1]["train"]["batch_size"] = 16
    with pytest.raises(ValueError, match="seed 2 differs in train"):
        train_pack(data_file, specs, [tmp_path / "a", tmp_path / "b"])
