"""ALE, DeViSE and SJE (model=ale|devise|sje): their losses by hand, the compatibility as the
pool's scorer, training on the embedded data, checkpoints through src.eval."""

from __future__ import annotations

import pytest
import torch
from hydra_utils import QUIET, compose_config, miner_classes

from src.callbacks import NegativePoolRefresh
from src.data.synthetic import SyntheticDataModule
from src.eval import evaluate
from src.mining import AllMiner, HardestMiner
from src.mining.pool import NegativePool
from src.mining.scorer import PairScorer, PoolTrainedModel
from src.models import CompatibilityZSLSystem
from src.models.losses import ALELoss, DeViSELoss, ScoredBatch, SJELoss
from src.models.ranking import ale_loss, devise_loss, estimated_ranks, rank_weights, sje_loss
from src.train import train

CHANCE = 1 / 10  # 10 unseen classes in the default data
METRICS = ("test/zsl_acc", "test/gzsl_s", "test/gzsl_u", "test/gzsl_H", "test/gamma")

# Two images, K = 3 negatives each, margin Δ = 1. Hinge terms max(0, Δ + F(x, j) − F(x, y)):
#   image 0, F(x, y) = 2.0: 1 + 1.5 − 2 = 0.5 · 1 + 0.0 − 2 = −1 → 0 · 1 + 2.2 − 2 = 1.2
#   image 1, F(x, y) = 0.5: 1 + 0.0 − 0.5 = 0.5 · 1 + 1.0 − 0.5 = 1.5 · 1 − 1.0 − 0.5 → 0
POSITIVE = torch.tensor([2.0, 0.5], dtype=torch.float64)
NEGATIVES = torch.tensor([[1.5, 0.0, 2.2], [0.0, 1.0, -1.0]], dtype=torch.float64)


# ------------------------------------------------------------------------------- losses
def test_devise_sums_the_hinge_terms():
    # image 0: 0.5 + 0 + 1.2 = 1.7; image 1: 0.5 + 1.5 + 0 = 2.0
    assert devise_loss(POSITIVE, NEGATIVES, 1.0).tolist() == pytest.approx([1.7, 2.0])


def test_sje_keeps_the_most_violating_negative():
    # image 0: max(2.5, 1.0, 3.2) − 2.0 = 1.2; image 1: max(1.0, 2.0, 0.0) − 0.5 = 1.5
    assert sje_loss(POSITIVE, NEGATIVES, 1.0).tolist() == pytest.approx([1.2, 1.5])
    # no violator: max(0.1 + 0.5, 0.1 + 0.2) − 2.0 < 0 → 0
    assert sje_loss(torch.tensor([2.0]), torch.tensor([[0.5, 0.2]]), 0.1).tolist() == [0.0]


def test_ale_weighs_the_hinge_sum_by_the_rank():
    # Every other class in the pool (3 candidates): the rank is the violator count, 2 for both
    # images; β_2 / 2 = (1 + 1/2) / 2 = 0.75: image 0: 0.75 × 1.7 = 1.275, image 1: 0.75 × 2.0
    exact = ale_loss(POSITIVE, NEGATIVES, 1.0, num_candidates=3)
    assert exact.tolist() == pytest.approx([1.275, 1.5])
    # 3 of 9 candidates in the pool: r = ⌊2 × 9 / 3⌋ = 6, β_6 = 1 + 1/2 + … + 1/6 = 2.45,
    # β_6 / 6 = 0.408333…: image 0: 0.408333 × 1.7 = 0.694167, image 1: × 2.0 = 0.816667
    scaled = ale_loss(POSITIVE, NEGATIVES, 1.0, num_candidates=9)
    assert scaled.tolist() == pytest.approx([2.45 / 6 * 1.7, 2.45 / 6 * 2.0])
    # The weights are constants: ∂/∂F(x, y) = −weight × violators = −0.75 × 2 (image 0)
    positive = POSITIVE.clone().requires_grad_()
    ale_loss(positive, NEGATIVES, 1.0, num_candidates=3).sum().backward()
    assert positive.grad.tolist() == pytest.approx([-1.5, -1.5])


def test_ranks_and_their_weights():
    violators = torch.tensor([0, 1, 2, 3])
    assert estimated_ranks(violators, 3, 3).tolist() == [0, 1, 2, 3]  # exact: all in the pool
    # 3 of 4 candidates: ⌊v × 4 / 3⌋ = 0, 1 (1.33), 2 (2.67), 4
    assert estimated_ranks(violators, 3, 4).tolist() == [0, 1, 2, 4]
    # 4 of 10: ⌊1 × 10 / 4⌋ = 2 … and a single violator among many never ranks 0
    assert estimated_ranks(torch.tensor([1, 4]), 4, 10).tolist() == [2, 10]
    assert estimated_ranks(torch.tensor([1]), 50, 60).tolist() == [1]
    # β_r / r: 0 (no violator), 1, 1.5 / 2, (1 + 1/2 + 1/3) / 3
    weights = rank_weights(torch.tensor([0, 1, 2, 3]), max_rank=5)
    assert weights.tolist() == pytest.approx([0.0, 1.0, 0.75, (11 / 6) / 3])


@pytest.mark.parametrize(("loss", "expected"), [(DeViSELoss, 1.85), (SJELoss, 1.35),
                                               (ALELoss, 1.3875)])  # fmt: skip
def test_ranking_losses_average_over_images_of_distances_minus_f(loss, expected):
    # the loss classes read distances (−F, as every scorer gives them) and rank on F
    batch = ScoredBatch(-POSITIVE, -NEGATIVES, None, None, None, num_candidates=3)
    parts = loss(margin=1.0)(batch)
    assert float(parts["loss"]) == pytest.approx(expected)
    assert float(parts["violators"]) == pytest.approx(4 / 6)  # 4 of the 6 hinge terms > 0


# --------------------------------------------------------------- the pool's scorer
GENERATOR = dict(
    num_groups=2,
    classes_per_group=5,
    unseen_per_group=1,
    val_per_group=1,
    images_per_class=20,
    feature_dim=16,
    coarse_dims=10,
    fine_dims=6,
    num_flips=2,
)


@pytest.fixture(scope="module")
def small():
    dm = SyntheticDataModule(generator=GENERATOR, split_mode="val", batch_size=32, seed=0)
    dm.setup("fit")
    model = CompatibilityZSLSystem(dm.feature_dim, dm.signature_dim, ALELoss, margin=0.5)
    model.signatures, model.seen_classes = dm.signatures, dm.seen_classes
    model.initialise_from(dm.train_features, dm.train_labels)
    return dm, model


def test_the_compatibility_is_a_pair_scorer_of_distance_minus_f(small):
    dm, model = small
    assert isinstance(model, PoolTrainedModel) and isinstance(model.pool_scorer(), PairScorer)
    scorer, x, sig = model.pool_scorer(), dm.train_features[:9], dm.signatures
    f = x @ model.compatibility.W @ sig.T
    chunks = list(scorer.scored_chunks(x, sig, rows=4))
    assert [start for start, _ in chunks] == [0, 4, 8]
    torch.testing.assert_close(torch.cat([d for _, d in chunks]), -f)
    positives = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3, 0])
    # a negative violates the margin when F(x, j) > F(x, y) − Δ, i.e. −F(x, j) < −F(x, y) + Δ
    expected = -f.gather(1, positives[:, None]) + 0.5
    torch.testing.assert_close(scorer.thresholds(-f, positives), expected)
    batch = model.scored_batch(x, positives, torch.tensor([[4, 5]] * 9))
    torch.testing.assert_close(batch.positive, -f.gather(1, positives[:, None]).squeeze(1))
    torch.testing.assert_close(batch.negatives, -f[:, [4, 5]])
    torch.testing.assert_close(batch.embedded, x @ model.compatibility.W)
    assert batch.threshold is None  # a ranking loss trains no threshold


def test_hardest_negatives_are_the_most_compatible_classes(small):
    dm, model = small
    callback = NegativePoolRefresh(NegativePool(HardestMiner(num_negatives=2), warmup_epochs=0))
    stats = callback.refresh(model, dm, epoch=0)
    seen = dm.seen_classes
    f = model.compatibility.compatibilities(dm.train_features, dm.signatures[seen])
    local = torch.searchsorted(seen, dm.train_labels)
    f_masked = f.scatter(1, local[:, None], -torch.inf)
    expected = seen[f_masked.topk(2, dim=1).indices]
    assert torch.equal(callback.pool.negatives.sort(1).values, expected.sort(1).values)
    # wrong side: pool negatives inside the margin, F(x, j) > F(x, y) − Δ
    f_neg = f.gather(1, torch.searchsorted(seen, callback.pool.negatives))
    inside = (f_neg > f.gather(1, local[:, None]) - 0.5).float().mean()
    assert stats["pool/wrong_side_fraction"] == pytest.approx(float(inside))


@pytest.mark.parametrize("miner_cls", list(miner_classes().values()))
def test_every_miner_draws_a_valid_pool_for_the_compatibility(small, miner_cls):
    dm, model = small
    miner = AllMiner() if miner_cls is AllMiner else miner_cls(num_negatives=3)
    callback = NegativePoolRefresh(NegativePool(miner, seed=1, warmup_epochs=0))
    callback.refresh(model, dm, epoch=0)
    pool, num_seen = callback.pool.negatives, len(dm.seen_classes)
    assert pool.shape == (len(dm.train_labels), num_seen - 1 if miner.num_negatives is None else 3)
    assert not (pool == dm.train_labels[:, None]).any()
    assert torch.isin(pool, dm.seen_classes).all()
    assert (pool.sort(1).values.diff(dim=1) != 0).all()


def test_miner_all_is_every_other_seen_class_drawn_once(small):
    dm, model = small
    callback = NegativePoolRefresh(NegativePool(AllMiner()))
    assert callback.pool.warmup_epochs == 0 and AllMiner.draws_once
    callback.refresh(model, dm, epoch=0)
    seen = set(dm.seen_classes.tolist())
    expected = [sorted(seen - {y}) for y in dm.train_labels.tolist()]
    assert callback.pool.negatives.tolist() == expected
    assert not callback.pool.is_refresh_epoch(1)
    with pytest.raises(ValueError, match=r"miner\.num_negatives=3 is invalid with miner=all"):
        AllMiner(num_negatives=3)


# --------------------------------------------------------------------- training runs
@pytest.fixture(scope="module")
def untrained(tmp_path_factory):
    out = tmp_path_factory.mktemp("untrained") / "run"
    return train(compose_config([*QUIET, "model=ale", "trainer.max_epochs=0"], out))


def _train_and_evaluate(tmp_path, overrides: list[str]) -> dict[str, float]:
    """Train; evaluate the last checkpoint with src.eval: the same test metrics."""
    metrics = train(compose_config([*QUIET, *overrides], tmp_path / "run"))
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    cfg = compose_config([f"ckpt_path={ckpt}"], tmp_path / "eval", config_name="eval")
    evaluated = evaluate(cfg)
    for key in METRICS:
        assert evaluated[key] == pytest.approx(metrics[key], abs=1e-6), key
    return metrics


def test_ale_with_hardest_negatives_clears_the_bar(untrained, tmp_path):
    metrics = _train_and_evaluate(tmp_path, ["model=ale", "miner=hardest"])
    # measured: ZSL 0.973, H 0.744; untrained (ridge-initialised W) ZSL 0.957, H 0.481
    assert metrics["test/zsl_acc"] >= 0.93 > 9 * CHANCE
    assert metrics["test/gzsl_H"] >= untrained["test/gzsl_H"] + 0.15
    assert metrics["train/violators"] < 0.5  # the mined negatives were learnt


def test_ale_learns_from_a_random_initialisation(tmp_path):
    overrides = ["model=ale", "miner=hardest", "model.init=random", "trainer.max_epochs=4"]
    metrics = train(compose_config([*QUIET, *overrides], tmp_path / "run"))
    assert metrics["test/zsl_acc"] >= 0.8  # 0.897 measured after 4 epochs; 0.035 untrained


@pytest.mark.parametrize("objective", ["devise", "sje"])
def test_devise_and_sje_train_quickly(objective, untrained, tmp_path):
    overrides = [f"model={objective}", "miner=hardest", "trainer.max_epochs=4"]
    metrics = _train_and_evaluate(tmp_path, overrides)
    # measured after 4 epochs: devise ZSL 0.968, H 0.733; sje ZSL 0.966, H 0.707
    assert metrics["test/zsl_acc"] >= 0.93
    assert metrics["test/gzsl_H"] >= untrained["test/gzsl_H"] + 0.15


def test_sae_checkpoint_evaluates_to_the_same_test_metrics(tmp_path):
    import lightning as L

    from src.evaluation.gamma import TestGammaFromValidation
    from src.models import SAEClassifier

    dm = SyntheticDataModule(split_mode="test")
    dm.setup()
    model = SAEClassifier(dm.feature_dim, dm.signature_dim, lambdas=[1.0, 100.0])
    trainer = L.Trainer(
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[TestGammaFromValidation()],  # as src.train and src.eval test
    )
    expected = trainer.test(model, datamodule=dm, verbose=False)[0]
    ckpt = tmp_path / "sae.ckpt"
    trainer.save_checkpoint(ckpt)
    evaluated = evaluate(compose_config([f"ckpt_path={ckpt}"], tmp_path / "e", config_name="eval"))
    for key in (*METRICS, "val/sae_lambda", "val/sae_direction"):
        assert evaluated[key] == pytest.approx(expected[key], abs=1e-6), key


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.margin=-1", r"model\.margin=-1 is invalid: it must be a number > 0"),
        (
            "model.loss._target_=src.models.Warp",
            r"model\.loss\._target_='src\.models\.Warp' is "
            "invalid: it names no importable class",
        ),
        (
            "model.loss._target_=src.models.ESZSLClassifier",
            r"it must name a subclass of src\.models\.losses\.PoolLoss",
        ),
        ("model.init=zero", r"model\.init='zero' is invalid"),
        ("model.lr=0", r"model\.lr=0 is invalid"),
        ("model.weight_decay_to=one", r"model\.weight_decay_to='one' is invalid"),
        ("miner.num_negatives=60", r"miner\.num_negatives=60 is invalid for this data"),
    ],
)
def test_bad_compatibility_values_stop_with_a_message(override, message, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(Exception, match=message):
        train(compose_config([*QUIET, "model=devise", override], out))
    assert not (out / "checkpoints").exists()
