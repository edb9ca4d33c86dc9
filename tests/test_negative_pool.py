"""The NegativePoolRefresh callback on a tiny synthetic dataset, directly and inside real fits."""

from __future__ import annotations

import copy
import logging
from types import SimpleNamespace

import lightning as L
import pytest
import torch
from hydra_utils import strategy_classes

from src.callbacks import NegativePoolRefresh
from src.data.synthetic import SyntheticDataModule
from src.mining import (
    HardestMiner,
    RandomFixedMiner,
    RandomMiner,
    SemiHardMiner,
    UncertaintyCorrelationMiner,
    UncertaintyMiner,
)
from src.mining.pool import NegativePool, changed_fraction
from src.models import MetricZSLSystem

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
ALL_MINERS = list(strategy_classes().values())


def _callback(miner, seed: int = 0, warmup_epochs: int = 0, **pool_kwargs) -> NegativePoolRefresh:
    """The callback around a pool that mines from epoch 0 unless told otherwise."""
    pool = NegativePool(miner, seed=seed, warmup_epochs=warmup_epochs, **pool_kwargs)
    return NegativePoolRefresh(pool)


def _refresh(callback: NegativePoolRefresh, model, dm, epoch: int):
    """(pool, diagnostics) of one refresh, as the callback does it at an epoch start."""
    stats = callback.refresh(model, dm, epoch)
    return callback.pool.negatives, stats


@pytest.fixture(autouse=True)
def _quiet_lightning():
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _datamodule(split_mode: str) -> SyntheticDataModule:
    dm = SyntheticDataModule(generator=GENERATOR, split_mode=split_mode, batch_size=32, seed=0)
    dm.setup("fit")
    return dm


@pytest.fixture(scope="module")
def datamodules() -> dict[str, SyntheticDataModule]:
    return {mode: _datamodule(mode) for mode in ("val", "test")}


def _model(dm: SyntheticDataModule, beta: float = 1.0) -> MetricZSLSystem:
    """A model initialised like MetricZSLSystem.setup does, then perturbed to break symmetries."""
    torch.manual_seed(0)
    model = MetricZSLSystem(dm.feature_dim, dm.signature_dim, beta=beta)
    model.metric.initialise(dm.train_features, dm.signatures[dm.train_labels])
    with torch.no_grad():
        g = torch.Generator().manual_seed(1)
        model.metric.W.add_(0.3 * torch.randn(model.metric.W.shape, generator=g))
    return model


@pytest.fixture(scope="module")
def models(datamodules) -> dict[str, MetricZSLSystem]:
    return {mode: _model(dm) for mode, dm in datamodules.items()}


def _excluded_classes(dm: SyntheticDataModule) -> set[int]:
    seen = set(dm.seen_classes.tolist())
    return set(range(len(dm.signatures))) - seen


# ---------------------------------------------------------------------- pool invariants
@pytest.mark.parametrize("split_mode", ["val", "test"])
@pytest.mark.parametrize("miner_cls", ALL_MINERS)
def test_pool_never_holds_the_own_class_or_non_training_classes(
    datamodules, models, split_mode, miner_cls
):
    dm, model = datamodules[split_mode], models[split_mode]
    k = 3
    callback = _callback(miner_cls(num_negatives=k), seed=3)
    pool, stats = _refresh(callback, model, dm, epoch=0)
    n = len(dm.train_labels)
    assert pool.shape == (n, k)
    assert not (pool == dm.train_labels[:, None]).any()
    assert torch.isin(pool, dm.seen_classes).all()
    excluded = torch.tensor(sorted(_excluded_classes(dm)))
    assert not torch.isin(pool, excluded).any()
    if split_mode == "val":  # validation classes are unseen during model selection
        val_classes = torch.as_tensor(dm.arrays.labels[dm.arrays.splits["val"]]).unique()
        assert len(val_classes) == 2
        assert not torch.isin(pool, val_classes).any()
    assert (pool.sort(1).values.diff(dim=1) != 0).all()
    if miner_cls.uses_model:
        assert 0.0 <= stats["pool/wrong_side_fraction"] <= 1.0
    else:  # model-free draws skip the scoring and its diagnostics
        assert set(stats) == {"pool/changed_fraction", "pool/refresh_s"}


@pytest.mark.parametrize("split_mode", ["val", "test"])
@pytest.mark.parametrize("miner_cls", ALL_MINERS)
def test_pool_with_k_equal_seen_minus_one_is_all_other_seen_classes(
    datamodules, models, split_mode, miner_cls
):
    dm, model = datamodules[split_mode], models[split_mode]
    seen = set(dm.seen_classes.tolist())
    callback = _callback(miner_cls(num_negatives=len(seen) - 1), seed=0)
    pool, _ = _refresh(callback, model, dm, epoch=1)
    expected = [seen - {y} for y in dm.train_labels.tolist()]
    assert [set(row) for row in pool.tolist()] == expected


def test_hardest_pool_matches_a_direct_computation(datamodules, models):
    dm, model = datamodules["val"], models["val"]
    k = 2
    pool, stats = _refresh(_callback(HardestMiner(num_negatives=k)), model, dm, 0)
    with torch.no_grad():  # float64 reference of the same metric
        metric64 = copy.deepcopy(model.metric).double()
        d = metric64.distances(dm.train_features.double(), dm.signatures.double())
    d_model = d.clone()
    for c in _excluded_classes(dm):
        d[:, c] = float("inf")
    d[torch.arange(len(d)), dm.train_labels] = float("inf")
    expected = d.topk(k, dim=1, largest=False).indices
    assert [set(r) for r in pool.tolist()] == [set(r) for r in expected.tolist()]
    # the diagnostics describe the same distances
    rows = torch.arange(len(d))
    mean_pos = float(d_model[rows, dm.train_labels].mean())
    mean_neg = float(d_model.gather(1, pool).mean())
    assert stats["pool/mean_d_pos"] == pytest.approx(mean_pos, rel=1e-4)
    assert stats["pool/mean_d_neg"] == pytest.approx(mean_neg, rel=1e-4)
    wrong = float((d_model.gather(1, pool) < float(model.metric.b.detach())).double().mean())
    assert stats["pool/wrong_side_fraction"] == pytest.approx(wrong, abs=1e-9)


@pytest.mark.parametrize("miner_cls", [HardestMiner, SemiHardMiner])
def test_chunked_scoring_gives_the_same_pool(datamodules, models, miner_cls):
    dm, model = datamodules["test"], models["test"]
    whole = _callback(miner_cls(num_negatives=3), memory_budget_mb=256.0)
    tiny = _callback(miner_cls(num_negatives=3), memory_budget_mb=1e-3)
    num_seen = len(dm.seen_classes)
    assert whole.pool.chunk_rows(num_seen) >= len(dm.train_labels)
    assert tiny.pool.chunk_rows(num_seen) < len(dm.train_labels) // 10  # many chunks
    pool_whole, stats_whole = _refresh(whole, model, dm, 0)
    pool_tiny, stats_tiny = _refresh(tiny, model, dm, 0)
    assert torch.equal(pool_whole, pool_tiny)
    for key in ("pool/mean_d_pos", "pool/mean_d_neg", "pool/wrong_side_fraction"):
        assert stats_tiny[key] == pytest.approx(stats_whole[key], rel=1e-5)


def test_chunk_rows_honours_the_budget():
    pool = NegativePool(RandomMiner(num_negatives=1), memory_budget_mb=1.0)
    assert pool.chunk_rows(100) == 2**20 // (6 * 4 * 100)
    assert NegativePool(RandomMiner(), memory_budget_mb=1e-9).chunk_rows(100) == 1
    with pytest.raises(ValueError, match=r"pool\.memory_budget_mb=0\b"):
        NegativePool(RandomMiner(), memory_budget_mb=0)


# ------------------------------------------------------------------- schedule and seeds
def test_same_seed_and_epoch_give_the_same_pool(datamodules, models):
    dm, model = datamodules["val"], models["val"]
    pools = {}
    for seed, epoch in ((0, 0), (0, 0), (0, 1), (1, 0)):
        callback = _callback(UncertaintyCorrelationMiner(num_negatives=3), seed=seed)
        pool, _ = _refresh(callback, model, dm, epoch)
        if (seed, epoch) in pools:
            assert torch.equal(pools[(seed, epoch)], pool)
        pools[(seed, epoch)] = pool
    assert not torch.equal(pools[(0, 0)], pools[(0, 1)])
    assert not torch.equal(pools[(0, 0)], pools[(1, 0)])


def test_warmup_epochs_use_random_negatives(datamodules, models):
    dm, model = datamodules["test"], models["test"]
    hard = _callback(HardestMiner(num_negatives=3), seed=5, warmup_epochs=2)
    rand = _callback(RandomMiner(num_negatives=3), seed=5)
    plain_hard = _callback(HardestMiner(num_negatives=3), seed=5, warmup_epochs=0)
    assert isinstance(hard.pool.miner_for(0), RandomMiner)
    assert isinstance(hard.pool.miner_for(1), RandomMiner)
    assert hard.pool.miner_for(2) is hard.pool.miner
    for epoch in (0, 1):
        assert torch.equal(_refresh(hard, model, dm, epoch)[0], _refresh(rand, model, dm, epoch)[0])
    assert torch.equal(_refresh(hard, model, dm, 2)[0], _refresh(plain_hard, model, dm, 2)[0])
    assert not torch.equal(_refresh(hard, model, dm, 1)[0], _refresh(plain_hard, model, dm, 1)[0])


def test_is_refresh_epoch_schedule():
    pool = NegativePool(HardestMiner(num_negatives=1), refresh_every=3, warmup_epochs=2)
    assert pool.is_refresh_epoch(7)  # no pool yet: always refresh
    pool.negatives = torch.zeros(1, 1, dtype=torch.long)
    got = [pool.is_refresh_epoch(e) for e in range(10)]
    #          0     1     2     3      4      5     6      7      8     9
    assert got == [True, True, True, False, False, True, False, False, True, False]

    fixed = NegativePool(RandomFixedMiner(num_negatives=1), refresh_every=2)
    assert fixed.is_refresh_epoch(0)
    fixed.negatives = torch.zeros(1, 1, dtype=torch.long)
    assert not any(fixed.is_refresh_epoch(e) for e in range(6))

    every = NegativePool(RandomMiner(num_negatives=1))
    every.negatives = torch.zeros(1, 1, dtype=torch.long)
    assert all(every.is_refresh_epoch(e) for e in range(6))


def test_default_warmup_follows_whether_the_strategy_reads_the_model():
    warmups = {name: NegativePool(cls(num_negatives=1)).warmup_epochs
               for name, cls in strategy_classes().items()}  # fmt: skip
    assert warmups == {
        "random_fixed": 0, "random": 0, "correlation": 0, "uncertainty": 1,
        "uncertainty_correlation": 1, "hardest": 1, "semi_hard": 1, "loss_weighted": 1,
    }  # fmt: skip
    assert NegativePool(HardestMiner(), warmup_epochs=3).warmup_epochs == 3
    for key, kwargs in (("refresh_every=0", {"refresh_every": 0}),
                        ("warmup_epochs=-1", {"warmup_epochs": -1})):  # fmt: skip
        with pytest.raises(ValueError, match=rf"pool\.{key} is invalid"):
            NegativePool(HardestMiner(), **kwargs)


def test_callback_refuses_a_model_without_a_metric(datamodules):
    trainer = SimpleNamespace(datamodule=datamodules["val"])
    with pytest.raises(TypeError, match="negative pool trains a model that scores pairs"):
        _callback(RandomMiner(num_negatives=1)).setup(trainer, L.LightningModule(), "fit")


def test_callback_setup_checks_the_number_of_seen_classes(datamodules):
    dm = datamodules["val"]  # 6 seen classes
    trainer = SimpleNamespace(datamodule=dm)
    model = _model(dm)
    _callback(RandomMiner(num_negatives=5)).setup(trainer, model, "fit")
    with pytest.raises(ValueError, match=r"miner\.num_negatives=6\b"):
        _callback(RandomMiner(num_negatives=6)).setup(trainer, model, "fit")


# ----------------------------------------------------------------------------- checkpoint
@pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`")
def test_state_dict_round_trip(datamodules, models):
    dm, model = datamodules["val"], models["val"]
    callback = _callback(SemiHardMiner(num_negatives=2), seed=4)
    trainer = SimpleNamespace(current_epoch=0, datamodule=dm)
    callback.on_train_epoch_start(trainer, model)  # refresh; log_dict without a trainer is a no-op
    state = callback.state_dict()
    assert state["last_refresh_epoch"] == 0
    restored = _callback(SemiHardMiner(num_negatives=2), seed=4)
    restored.load_state_dict(state)
    assert torch.equal(restored.pool.negatives, callback.pool.negatives)
    assert restored.pool.last_refresh_epoch == 0
    # a resumed epoch-0 start does not redraw; it hands the restored pool to the module
    model.negative_pool = None
    restored.load_state_dict({**state, "pool": state["pool"].clone()})
    restored.refresh = None  # any refresh would now fail loudly
    restored.on_train_epoch_start(trainer, model)
    assert torch.equal(model.negative_pool, callback.pool.negatives)


def test_changed_fraction_on_hand_made_pools():
    prev = torch.tensor([[1, 2], [3, 4]])
    assert changed_fraction(None, prev) == 1.0
    assert changed_fraction(prev, prev.clone()) == 0.0
    assert changed_fraction(prev, torch.tensor([[2, 1], [4, 3]])) == 0.0  # order is irrelevant
    assert changed_fraction(prev, torch.tensor([[2, 5], [6, 7]])) == pytest.approx(0.75)
    assert changed_fraction(prev, torch.tensor([[3, 4], [1, 2]])) == 1.0  # per image, not global
    assert changed_fraction(prev, torch.tensor([[1, 2, 3], [3, 4, 5]])) == 1.0  # new shape
    assert changed_fraction(prev, torch.tensor([[1, 9]])) == 1.0


# ---------------------------------------------------------------------------- real fits
class _PoolRecorder(L.Callback):
    def __init__(self) -> None:
        self.pools: list[torch.Tensor] = []

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.pools.append(pl_module.negative_pool.clone())


def _fit(miner, max_epochs: int = 2, split_mode: str = "val", ckpt_path=None, root=None):
    dm = SyntheticDataModule(generator=GENERATOR, split_mode=split_mode, batch_size=64, seed=0)
    torch.manual_seed(0)
    model = MetricZSLSystem(feature_dim=16, signature_dim=16, lr=1e-2)
    pool_cb, recorder = NegativePoolRefresh(NegativePool(miner, seed=7)), _PoolRecorder()
    trainer = L.Trainer(
        max_epochs=max_epochs,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        default_root_dir=root,
        callbacks=[pool_cb, recorder],
    )
    trainer.fit(model, datamodule=dm, ckpt_path=ckpt_path)
    return trainer, model, pool_cb, recorder, dm


def test_fit_random_redraws_and_random_fixed_keeps_the_pool():
    _, _, cb, rec, dm = _fit(RandomMiner(num_negatives=3))
    assert len(rec.pools) == 2
    assert not torch.equal(rec.pools[0], rec.pools[1])
    assert 0.3 < changed_fraction(rec.pools[0], rec.pools[1]) < 1.0
    assert torch.equal(rec.pools[1], cb.pool.negatives)
    assert cb.pool.last_refresh_epoch == 1
    for pool in rec.pools:
        assert not (pool == dm.train_labels[:, None]).any()
        assert torch.isin(pool, dm.seen_classes).all()

    _, _, fixed_cb, fixed_rec, _ = _fit(RandomFixedMiner(num_negatives=3))
    assert torch.equal(fixed_rec.pools[0], fixed_rec.pools[1])
    assert fixed_cb.pool.last_refresh_epoch == 0
    # the first pool of both baselines is the same draw (same seed, same epoch, same law)
    assert torch.equal(fixed_rec.pools[0], rec.pools[0])


def test_fit_resume_draws_the_same_pools(tmp_path):
    """A run stopped after epoch 0 and resumed from its checkpoint mines what a full run mines."""
    miner = lambda: UncertaintyMiner(num_negatives=2)  # noqa: E731  (1 warm-up epoch)
    _, _, _, full, _ = _fit(miner(), max_epochs=2, root=tmp_path / "full")
    trainer, _, _, first, _ = _fit(miner(), max_epochs=1, root=tmp_path / "a")
    ckpt = tmp_path / "epoch0.ckpt"
    trainer.save_checkpoint(ckpt)
    _, _, resumed_cb, resumed, _ = _fit(miner(), max_epochs=2, ckpt_path=ckpt, root=tmp_path / "b")
    assert torch.equal(first.pools[0], full.pools[0])
    assert len(resumed.pools) == 1  # only epoch 1 ran after the resume
    assert torch.equal(resumed.pools[0], full.pools[1])
    assert resumed_cb.pool.last_refresh_epoch == 1
