"""The learning-rate grid, the stopping rule and common random numbers (issues 20, 21, 24)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
import torch

from sparse_vae.errors import TrainingDiverged
from sparse_vae.grid import CandidateAdam, CandidateBook
from sparse_vae.model import build_model
from sparse_vae.model_io import export_candidate, load_model
from sparse_vae.train import Trainer, train_run
from test_train import data_file, make_spec, template_images  # noqa: F401  (data_file is a fixture)

torch.set_num_threads(1)


def test_candidate_adam_is_torch_adam_per_candidate() -> None:
    """Each candidate of a stacked parameter follows torch's Adam with its own learning rate."""
    torch.manual_seed(0)
    lrs = [1e-3, 1e-2, 0.1]
    start = torch.randn(3, 4, 5)
    stacked = start.clone().requires_grad_()
    singles = [start[k].clone().requires_grad_() for k in range(3)]
    ours = CandidateAdam([stacked], lrs)
    theirs = [torch.optim.Adam([p], lr=lr) for p, lr in zip(singles, lrs)]
    for step in range(20):
        target = torch.randn(4, 5)
        ours.zero_grad()
        ((stacked - target) ** 3).sum().backward()
        ours.step()
        for p, opt in zip(singles, theirs):
            opt.zero_grad()
            ((p - target) ** 3).sum().backward()
            opt.step()
    for k in range(3):
        torch.testing.assert_close(stacked[k].detach(), singles[k].detach(), rtol=1e-5, atol=1e-6)


def test_dropping_candidates_leaves_the_others_steps_unchanged() -> None:
    """`keep` (a stopped candidate leaves the batch) continues the kept candidates exactly."""
    torch.manual_seed(0)
    start, targets = torch.randn(3, 4), torch.randn(8, 4)
    full, part = start.clone().requires_grad_(), start.clone().requires_grad_()
    ours, theirs = CandidateAdam([full], [1e-2, 2e-2, 3e-2]), CandidateAdam([part], [1e-2, 2e-2, 3e-2])
    for step, target in enumerate(targets):
        if step == 3:
            part.data = part.data[[2, 0]].clone()
            theirs.keep([2, 0])
        for p, opt in ((full, ours), (part, theirs)):
            opt.zero_grad()
            ((p - target) ** 2).sum().backward()
            opt.step()
    assert theirs.lrs == [3e-2, 1e-2]
    assert torch.equal(part.detach(), full.detach()[[2, 0]])


def test_stopping_rule_stops_a_flat_curve_and_continues_an_improving_one() -> None:
    book = CandidateBook([1e-3, 2e-3], patience=3, min_delta=0.01)
    for epoch in range(1, 11):
        flat = 5.0 + 0.001 * epoch              # gains below min_delta: no improvement
        improving = 5.0 + 0.5 * epoch
        book.update(epoch, [flat, improving])
    book.close(10)
    assert book.status == ["converged", "cap"]
    assert book.best_epoch == [1, 10] and book.since_best[0] == 3
    assert book.winner() == 1


def test_patience_counts_only_after_the_kl_warm_up() -> None:
    book = CandidateBook([1e-3], patience=3, min_delta=0.01, warmup=5)
    for epoch in range(1, 8):
        book.update(epoch, [5.0])                # flat from the start
    assert book.status == ["training"] and book.since_best == [2]   # epochs 6 and 7 counted
    book.update(8, [5.0])
    assert book.status == ["converged"] and book.best_epoch == [1]


def test_kl_warm_up_weights_the_kl_in_the_loss_only() -> None:
    spec = make_spec("laplace", epochs=1)
    model = build_model(spec, input_dim=25)
    x = torch.rand(16, 25)
    torch.manual_seed(0)
    full = model(x)
    torch.manual_seed(0)
    half = model(x, kl_weight=0.5)
    torch.testing.assert_close(half.recon, full.recon)
    torch.testing.assert_close(half.kl, full.kl)                  # reported terms are unweighted
    torch.testing.assert_close(half.loss, full.recon + 0.5 * full.kl)


def test_one_element_grid_reproduces_the_single_value_history(data_file: Path, tmp_path: Path) -> None:
    train_run(data_file, make_spec(epochs=3, lr=3e-3), tmp_path / "number")
    train_run(data_file, make_spec(epochs=3, lr=[3e-3]), tmp_path / "list")
    timing = ["seconds", "samples_per_s"]
    a, b = (pd.read_csv(tmp_path / run / "history.csv").drop(columns=timing) for run in ("number", "list"))
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    for name, value in load_model(tmp_path / "number" / "model.pt")[0].state_dict().items():
        assert torch.equal(value, load_model(tmp_path / "list" / "model.pt")[0].state_dict()[name]), name


def test_a_grid_keeps_the_candidate_with_the_best_validation_iwae(data_file: Path, tmp_path: Path) -> None:
    lrs = [1e-4, 3e-3, 3e-2]
    summary = train_run(data_file, make_spec(epochs=5, lr=lrs), tmp_path)
    history = pd.read_csv(tmp_path / "history.csv")
    best = history.groupby("candidate")["val_iwae"].max()
    assert summary["candidate"] == int(best.idxmax()) and summary["lr"] == lrs[int(best.idxmax())]
    assert [c["val_iwae"] for c in summary["candidates"]] == pytest.approx(best.tolist())
    assert sorted(set(history["lr"])) == lrs
    # model.pt is that candidate's kept weights: scoring it again gives the recorded validation IWAE.
    model, checkpoint = load_model(tmp_path / "model.pt")
    assert checkpoint["candidate"] == summary["candidate"]
    spec = make_spec(epochs=5, lr=lrs)
    trainer = Trainer(spec, torch.from_numpy(template_images(1024)), torch.from_numpy(template_images(256, 1)),
                      torch.device("cpu"), "x", None)
    rescored = float(trainer.evaluate(trainer.x_val, model)[0, 3])   # same evaluation noise, shared by candidates
    assert rescored == pytest.approx(summary["selected"]["val_iwae"], rel=1e-5)


def test_a_grid_candidate_matches_its_own_single_run_at_the_first_step() -> None:
    """Stacked candidates start from the seed's one initialisation and see the same data: the
    batched model's candidate k computes exactly what a plain model computes."""
    spec = make_spec()
    torch.manual_seed(7)
    plain = build_model(spec, 25)
    torch.manual_seed(7)
    stacked = build_model(spec, 25, candidates=3)
    for k in range(3):
        exported = export_candidate(stacked, k, spec)
        for name, value in plain.state_dict().items():
            assert torch.equal(exported.state_dict()[name], value), name
    x = torch.from_numpy(template_images(16))
    torch.manual_seed(1)
    single = plain(x)
    torch.manual_seed(1)
    batched = stacked(x)
    assert batched.loss.shape == (3,)
    torch.testing.assert_close(batched.loss[0], single.loss)


def test_a_diverging_candidate_is_dropped_and_named(data_file: Path, tmp_path: Path) -> None:
    summary = train_run(data_file, make_spec("normal", epochs=3, lr=[3e-3, 1e6]), tmp_path)
    dropped = summary["candidates"][1]
    assert summary["candidate"] == 0 and dropped["status"] == "diverged"
    assert "run toy/normal/z2/seed7 (candidate 1, lr 1e+06)" in dropped["reason"] and "epoch 1, step" in dropped["reason"]
    history = pd.read_csv(tmp_path / "history.csv")
    assert set(history.loc[history["epoch"] > 1, "candidate"]) == {0}


def test_the_run_fails_only_when_every_candidate_diverges(data_file: Path, tmp_path: Path) -> None:
    with pytest.raises(TrainingDiverged) as error:
        train_run(data_file, make_spec("normal", epochs=3, lr=[1e6, 3e6]), tmp_path)
    message = str(error.value)
    assert "\n" not in message and "candidate 0, lr 1e+06" in message and "candidate 1, lr 3e+06" in message
    assert not (tmp_path / "model.pt").exists()


def test_stopping_rule_ends_a_run_that_stopped_improving(data_file: Path, tmp_path: Path) -> None:
    """lr 1e-7 leaves the validation IWAE flat (gains far below min_delta): stopped after `patience`."""
    summary = train_run(data_file, make_spec(epochs=50, lr=1e-7, patience=3, min_delta=0.01), tmp_path)
    assert summary["converged"] and summary["epochs"] == 4 and summary["selected_epoch"] == 1
    assert summary["stopping"]["status"] == "converged"
    improving = train_run(data_file, make_spec(epochs=6, lr=3e-3, patience=3, min_delta=0.01), tmp_path / "b")
    assert not improving["converged"] and improving["stopping"]["status"] == "cap" and improving["epochs"] == 6
    assert json.loads((tmp_path / "b" / "train.json").read_text())["stopping"]["reason"].startswith("still improving")


def test_common_random_numbers_pair_the_priors_of_a_seed() -> None:
    """Seed s gives every prior the same validation split, batch order and initial weights of every
    layer whose shape does not depend on the prior."""
    x, x_test = torch.from_numpy(template_images(256)), torch.from_numpy(template_images(64, 1))
    trainers = [Trainer(make_spec(prior, kl=kl), x, x_test, torch.device("cpu"), "x", None)
                for prior, kl in (("normal", "closed_form"), ("laplace", "closed_form"), ("cauchy", "closed_form"),
                                  ("cauchy_gauss", "monte_carlo"))]
    first = trainers[0]
    orders = [torch.randperm(first.x_train.shape[0], generator=t.batch_order[0]) for t in trainers]
    for trainer, order in zip(trainers[1:], orders[1:]):
        assert torch.equal(trainer.x_val, first.x_val)
        assert torch.equal(order, orders[0])
        for name, value in first.model.state_dict().items():
            assert torch.equal(trainer.model.state_dict()[name], value), name
    other_seed = Trainer({**make_spec(), "seed": 8}, x, x_test, torch.device("cpu"), "x", None)
    assert not torch.equal(other_seed.model.state_dict()["encoder.0.weight"],
                           first.model.state_dict()["encoder.0.weight"])


def test_learned_pixel_sd_starts_at_the_data_sd() -> None:
    x = torch.from_numpy(template_images(512))
    trainer = Trainer(make_spec(), x, x[:64], torch.device("cpu"), "x", None)
    expected = float(trainer.x_train.var(0).mean().sqrt())
    assert float(trainer.model.obs_sd().flatten()[0].detach()) == pytest.approx(expected, rel=1e-5)
    assert math.isclose(expected, 0.07, rel_tol=0.5)   # the toy data's scale, far from the old fixed 0.1


def test_each_grid_candidate_is_a_restart_paired_across_priors() -> None:
    """Candidate 0 starts from the seed's own weights; candidate k > 0 from those of seed restart_seed(s, k),
    whatever the prior (so the restarts stay paired too)."""
    from sparse_vae.grid import restart_seed  # noqa: PLC0415

    x = torch.from_numpy(template_images(256))
    grid = {prior: Trainer(make_spec(prior, lr=[1e-3, 2e-3, 4e-3]), x, x[:64], torch.device("cpu"), "x", None)
            for prior in ("normal", "laplace")}
    spec = make_spec("laplace")
    for k in range(3):
        torch.manual_seed(restart_seed(7, k))
        plain = build_model(spec, 25)
        exported = export_candidate(grid["laplace"].model, k, spec).state_dict()
        for name, value in plain.state_dict().items():
            if name != "obs_log_sd":   # starts at the data's sd, not the plain default
                assert torch.equal(exported[name], value), (k, name)
        normal = export_candidate(grid["normal"].model, k, make_spec("normal")).state_dict()
        assert all(torch.equal(normal[n], v) for n, v in exported.items() if n.startswith(("encoder", "decoder")))
    first, second = (export_candidate(grid["laplace"].model, k, spec).state_dict() for k in (0, 1))
    assert not torch.equal(first["encoder.0.weight"], second["encoder.0.weight"])


def test_an_exported_candidate_stays_on_the_grid_models_device() -> None:
    """The kept model is scored on the device's test split: export must not move it to the host
    (found on CUDA; the meta device shows the same without a GPU)."""
    spec = make_spec("laplace", lr=[1e-3, 2e-3])
    grid = build_model(spec, input_dim=25, candidates=2).to("meta")
    assert {p.device.type for p in export_candidate(grid, 1, spec).parameters()} == {"meta"}


def _toy_trainer(checkpoint: Path | None = None, **train) -> Trainer:
    spec = make_spec(epochs=8, lr=[3e-3, 1e-7], min_delta=0.01, **train)
    return Trainer(spec, torch.from_numpy(template_images(1024)), torch.from_numpy(template_images(256, 1)),
                   torch.device("cpu"), "fingerprint", checkpoint)


def test_a_stopped_candidate_leaves_the_batch_and_the_others_go_on_unchanged() -> None:
    """lr 1e-7 is flat, so it converges at epoch 3 and its row is dropped from the stacked model;
    candidate 0 trains on as it does when nothing stops (patience off): same batches and draws, the
    only difference the rounding of a matmul one candidate narrower (~1e-7 relative)."""
    compacted = _toy_trainer(patience=2)
    compacted.fit()
    reference = _toy_trainer(patience=None)
    reference.fit()
    book = compacted.books[0]
    assert book.status == ["cap", "converged"] and book.best_epoch[1] == 1
    assert compacted.model.candidates == 1 and compacted.layout.rows == [0]
    ours, theirs = (pd.DataFrame(t.state.history[0]).drop(columns=["seconds", "samples_per_s"])
                    for t in (compacted, reference))
    pd.testing.assert_frame_equal(ours[ours.candidate == 0].reset_index(drop=True),
                                  theirs[theirs.candidate == 0].reset_index(drop=True), rtol=1e-5)
    assert ours.loc[(ours.candidate == 0) & (ours.epoch <= 3)].equals(theirs.loc[(theirs.candidate == 0) & (theirs.epoch <= 3)])
    assert set(ours.loc[ours.epoch > 3, "candidate"]) == {0}
    winner, model = compacted.kept_models()[0]
    assert winner == 0 and model.candidates is None
    assert compacted.model.candidates == 2   # the whole grid again, on its kept weights


def test_a_run_killed_after_a_candidate_stopped_resumes_exactly(tmp_path: Path) -> None:
    class Killed(Exception):
        pass

    original = Trainer.save_checkpoint

    def save_then_die(self: Trainer) -> None:
        original(self)
        if self.state.epoch == 5:
            assert self.model.candidates == 1   # the checkpoint holds the compacted model
            raise Killed

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Trainer, "save_checkpoint", save_then_die)
        with pytest.raises(Killed):
            _toy_trainer(tmp_path / "checkpoint.pt", patience=2).fit()
    resumed = _toy_trainer(tmp_path / "checkpoint.pt", patience=2)
    resumed.fit()
    uninterrupted = _toy_trainer(patience=2)
    uninterrupted.fit()
    ours, theirs = (pd.DataFrame(t.state.history[0]).drop(columns=["seconds", "samples_per_s"])
                    for t in (resumed, uninterrupted))
    pd.testing.assert_frame_equal(ours, theirs, check_exact=True)
    for (name, a), b in zip(resumed.kept_models()[0][1].state_dict().items(),
                            uninterrupted.kept_models()[0][1].state_dict().values()):
        assert torch.equal(a, b), name


def test_a_pack_whose_seeds_lost_different_members_goes_on_as_its_runs_alone() -> None:
    """After seed 2 of a 2-seed pack loses one candidate (seed 1 keeps both), the stack holds 3
    members with unequal groups (each member then gets its seed's batch): every member still
    trains exactly as in its own seed's run with the same candidate stopped at the same epoch."""
    x, x_test = torch.from_numpy(template_images(1024)), torch.from_numpy(template_images(256, 1))
    specs = [{**make_spec(epochs=4, lr=[3e-3, 1e-2]), "seed": seed} for seed in (1, 2)]

    def stop_after_epoch_1(trainer: Trainer, seed_index: int) -> None:
        trainer.state.epoch = 1
        started = trainer.active()
        train = trainer.train_epoch(1)
        val = trainer._by_member(trainer.evaluate(trainer.x_val))
        trainer.record_epoch(1, started, train, val, 1.0)
        if seed_index is not None:
            trainer.books[seed_index].status[1] = "converged"   # as if its stopping rule had fired
            trainer._compact()
        trainer.fit()                                             # epochs 2-4

    pack = Trainer(specs, x, x_test, torch.device("cpu"), "x", None)
    stop_after_epoch_1(pack, 1)
    assert pack.layout.rows == [0, 1, 2] and not pack.layout.uniform
    alone = [Trainer(spec, x, x_test, torch.device("cpu"), "x", None) for spec in specs]
    stop_after_epoch_1(alone[0], None)
    stop_after_epoch_1(alone[1], 0)
    for i in range(2):
        ours, theirs = (pd.DataFrame(t.state.history[j]).drop(columns=["seconds", "samples_per_s"])
                        for t, j in ((pack, i), (alone[i], 0)))
        pd.testing.assert_frame_equal(ours, theirs, rtol=1e-5)
        for (name, a), b in zip(pack.kept_models()[i][1].state_dict().items(),
                                alone[i].kept_models()[0][1].state_dict().values()):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)
