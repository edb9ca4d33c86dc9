"""Multi-process (DDP) training and evaluation: sharding, pools and metrics against one process.

What "equal to the single-process run" means: ``IndexBatchSampler`` splits every batch of the
single-process order across the ranks, so at each step the ranks together see exactly the
single-process batch, and DDP's averaged gradient is that batch's gradient (near-equal slices,
a per-image mean loss). ``data.batch_size`` stays the global batch; the number of steps per
epoch does not change. The weights follow the single-process run up to float rounding (the
mean of per-rank means is not one mean bit for bit), so that comparison has tolerances. What
is exact, and tested so:

- every rank trains with the same pool and the same weights at every epoch;
- that pool is the one a single process builds from the same weights and seed;
- evaluating fixed weights under DDP gives every single-process metric, exactly.

The slow tests run ``trainer=ddp_cpu`` (2 processes, gloo) as subprocesses, as a user would.
"""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import hydra
import lightning as L
import pytest
import torch
from cli_utils import cli_command, cli_env, run_cli
from hydra_utils import QUIET, compose_config
from torch.utils.data import DistributedSampler

from src.callbacks import NegativePoolRefresh
from src.data.batches import IndexBatchSampler, IndexedImages, index_loader
from src.eval import evaluate

ROOT = Path(__file__).resolve().parents[1]
EPOCHS = 3
# uncertainty_correlation with warmup_epochs=1: a random pool at epoch 0, mined ones after.
TRAIN_ARGS = ["+experiment=hard_neg", f"trainer.max_epochs={EPOCHS}", *QUIET]
PROBE = "+callbacks.probe._target_=test_ddp.Probe"


class Probe(L.Callback):
    """Saves, on every rank: at every epoch start the pool the rank trains with and the weights
    that pool was built from (it runs after NegativePoolRefresh, listed before it); at the end
    of testing, the image indices of every training and test batch the rank processed."""

    def __init__(self) -> None:
        self.indices: dict[str, dict[int, list[torch.Tensor]]] = {"train": {}, "test": {}}

    def folder(self, trainer: L.Trainer) -> Path:
        folder = Path(trainer.default_root_dir) / "probe"
        folder.mkdir(exist_ok=True)
        return folder

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        state = {k: v.detach().cpu().clone() for k, v in pl_module.state_dict().items()}
        torch.save(
            {"pool": pl_module.negative_pool.cpu(), "weights": state},
            self.folder(trainer) / f"epoch{trainer.current_epoch}_rank{trainer.global_rank}.pt",
        )

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.indices["train"].setdefault(trainer.current_epoch, []).append(batch["index"].cpu())

    def on_test_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        self.indices["test"].setdefault(dataloader_idx, []).append(batch["index"].cpu())

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        seen = {stage: {k: torch.cat(v) for k, v in d.items()} for stage, d in self.indices.items()}
        torch.save(seen, self.folder(trainer) / f"indices_rank{trainer.global_rank}.pt")


# ------------------------------------------------------------------------------ sharding
@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize(
    ("num_items", "batch_size", "world_size"),
    [(5966, 256, 2), (1534, 4096, 2), (10, 4, 3), (9, 4, 2), (8, 4, 2), (7, 7, 4)],
)
def test_ranks_together_see_each_single_process_batch_once(
    num_items, batch_size, world_size, shuffle
):
    single = IndexBatchSampler(num_items, batch_size, shuffle, seed=3, rank=0, world_size=1)
    ranks = [
        IndexBatchSampler(num_items, batch_size, shuffle, seed=3, rank=r, world_size=world_size)
        for r in range(world_size)
    ]
    for sampler in [single, *ranks]:
        sampler.set_epoch(2)
    shards = [list(sampler) for sampler in ranks]
    steps = len(shards[0])
    assert all(len(s) == steps == len(sampler) for s, sampler in zip(shards, ranks, strict=True))
    assert all(len(batch) > 0 for shard in shards for batch in shard)
    together = [torch.cat([shard[i] for shard in shards]) for i in range(steps)]
    expected = list(single)
    if len(expected) > steps:  # a last batch smaller than world_size joins the one before it
        expected[-2:] = [torch.cat(expected[-2:])]
    assert len(together) == len(expected)
    for mine, theirs in zip(together, expected, strict=True):
        assert torch.equal(mine, theirs)  # the same images, in the same order
    for i in range(steps):  # near-equal slices: DDP's mean of means is the batch mean
        sizes = [len(shard[i]) for shard in shards]
        assert max(sizes) - min(sizes) <= 1


def test_sampler_refuses_fewer_images_than_processes():
    with pytest.raises(ValueError, match="3 images cannot be shared among 4 processes"):
        IndexBatchSampler(3, 2, shuffle=False, rank=0, world_size=4)
    with pytest.raises(ValueError, match="rank=2, world_size=2"):
        IndexBatchSampler(8, 2, shuffle=False, rank=2, world_size=2)


def test_single_process_loader_is_unchanged_and_left_alone_by_lightning():
    # Outside a process group the sampler is the plain single-process one.
    images = IndexedImages(torch.zeros(5, 3), torch.arange(5))
    sampler = index_loader(images, batch_size=2, shuffle=False, seed=0).sampler
    assert (sampler.rank, sampler.world_size) == (0, 1)
    assert [b.tolist() for b in sampler] == [[0, 1], [2, 3], [4]]
    # Lightning wraps any sampler that is not a DistributedSampler under DDP; not this one.
    assert isinstance(sampler, DistributedSampler)


@pytest.mark.parametrize("option", ["ddp", "ddp_cpu"])
def test_ddp_trainer_configs(option, tmp_path):
    cfg = compose_config([*QUIET, f"trainer={option}"], tmp_path / "run")
    assert cfg.trainer.devices == 2 and cfg.trainer.num_nodes == 1
    assert cfg.trainer.use_distributed_sampler is False
    if option == "ddp_cpu":
        strategy = hydra.utils.instantiate(cfg.trainer.strategy)
        assert cfg.trainer.accelerator == "cpu"
        assert strategy.process_group_backend == "gloo"
    else:
        assert (cfg.trainer.accelerator, cfg.trainer.strategy) == ("gpu", "ddp")


# ------------------------------------------------------------------- real DDP runs (slow)
def run_module(module: str, args: list[str], log_dir: Path) -> Path:
    """``python -m <module> <args>`` writing under ``log_dir``; returns its only job folder."""
    result = run_cli(module, [*args, f"paths.log_dir={log_dir}"], timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    runs = [p for p in log_dir.glob("*/runs/*") if p.is_dir()]
    assert len(runs) == 1, f"every rank must write into one job folder, got {runs}"
    return runs[0]


def probe(run: Path, epoch: int, rank: int) -> dict:
    return torch.load(run / "probe" / f"epoch{epoch}_rank{rank}.pt", weights_only=True)


def final_pool(run: Path) -> torch.Tensor:
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    return checkpoint["callbacks"]["NegativePoolRefresh"]["pool"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """The same seed and config on one process and on 2 DDP processes (test mode)."""
    root = tmp_path_factory.mktemp("ddp")
    return {
        "single": run_module("src.train", [*TRAIN_ARGS, PROBE], root / "single"),
        "ddp": run_module("src.train", [*TRAIN_ARGS, PROBE, "trainer=ddp_cpu"], root / "ddp"),
    }


@pytest.mark.slow
def test_each_rank_trains_and_tests_on_its_own_shard(runs):
    """Every epoch, the ranks' training images are disjoint and together all of them; every
    test image is scored by exactly one rank (summed counts would hide a duplicate: a per-class
    accuracy of doubled counts is unchanged)."""
    ranks = [torch.load(runs["ddp"] / "probe" / f"indices_rank{r}.pt") for r in range(2)]
    single = torch.load(runs["single"] / "probe" / "indices_rank0.pt")
    for stage, keys in (("train", range(EPOCHS)), ("test", (0, 1))):  # test: unseen, seen
        for key in keys:
            shards = [rank[stage][key] for rank in ranks]
            everything = single[stage][key]
            assert torch.equal(everything.sort().values, torch.arange(len(everything)))
            assert min(len(s) for s in shards) > 0
            assert torch.equal(torch.cat(shards).sort().values, torch.arange(len(everything)))


@pytest.mark.slow
def test_every_rank_trains_with_the_same_pool_and_weights(runs):
    run = runs["ddp"]
    for epoch in range(EPOCHS):
        rank0, rank1 = probe(run, epoch, 0), probe(run, epoch, 1)
        assert torch.equal(rank0["pool"], rank1["pool"]), f"pools differ at epoch {epoch}"
        for name, value in rank0["weights"].items():
            assert torch.equal(value, rank1["weights"][name]), f"{name} differs at {epoch}"
    assert torch.equal(final_pool(run), probe(run, EPOCHS - 1, 0)["pool"])


@pytest.mark.slow
def test_ddp_pool_is_the_single_process_pool_of_the_same_weights(runs, tmp_path):
    run = runs["ddp"]
    cfg = compose_config([*TRAIN_ARGS, "trainer=ddp_cpu"], tmp_path / "recompute")
    datamodule = hydra.utils.instantiate(cfg.data)
    datamodule.setup("fit")
    model = hydra.utils.instantiate(
        cfg.model, feature_dim=datamodule.feature_dim, signature_dim=datamodule.signature_dim
    )
    callback = hydra.utils.instantiate(cfg.callbacks.negative_pool)
    assert isinstance(callback, NegativePoolRefresh)
    for epoch in range(EPOCHS):  # epoch 0: seeded random pool; then mined from the weights
        seen = probe(run, epoch, 0)
        model.load_state_dict(seen["weights"])
        callback.refresh(model, datamodule, epoch)
        assert torch.equal(callback.pool.negatives, seen["pool"]), f"epoch {epoch}"
    # The seeded epoch-0 pool is also the single-process run's.
    assert torch.equal(probe(runs["single"], 0, 0)["pool"], probe(run, 0, 0)["pool"])


@pytest.mark.slow
def test_ddp_run_follows_the_single_process_run(runs):
    """Same global batches, same steps: the same run up to float rounding (see the module
    docstring). Rounding can move a mined negative across a sampling boundary: 1e-7 relative
    noise on the weights changes 0–2 of the 29,830 pool entries of the default data (CPU
    training is not bit-reproducible run to run either, see tests/test_resume.py); hence the
    tolerances, each far below what a real sharding error (a rank training on other images,
    or on half of them) produces. Observed with weight decay towards 0: identical pools and
    test metrics, weights within 2e-8; with decay towards the initialisation (the default
    since, μ = 1e-4): 35 of 29,830 pool entries differ at epoch 2, weights within 1.2e-4, test
    metrics equal within 2e-3. The decay itself is applied alike: with the same decay at μ = 0
    or μ = 0.01 the two runs end within 7e-7; only the μ = 1e-4 trajectory passes a sampling
    boundary where the 1e-7 noise flips mined negatives."""
    single, ddp = runs["single"], runs["ddp"]
    one = torch.load(single / "checkpoints" / "last.ckpt", weights_only=True)
    two = torch.load(ddp / "checkpoints" / "last.ckpt", weights_only=True)
    assert one["global_step"] == two["global_step"] == EPOCHS * 24  # ceil(5966 / 256) steps
    for name, value in one["state_dict"].items():
        # Measured with weight decay towards the initialisation: W within 1.2e-4 (with decay
        # towards 0: 2e-8); a rank training on other images, or on half of them, moves W by
        # far more than 1e-3 in 3 epochs.
        torch.testing.assert_close(two["state_dict"][name], value, rtol=0, atol=1e-3)
    assert torch.equal(probe(single, 0, 0)["pool"], probe(ddp, 0, 0)["pool"])  # seeded
    for epoch in range(1, EPOCHS):  # mined from the weights
        changed = probe(single, epoch, 0)["pool"] != probe(ddp, epoch, 0)["pool"]
        assert changed.float().mean() <= 5e-3, f"epoch {epoch}: {int(changed.sum())} differ"
    first = json.loads((single / "metrics.json").read_text())
    second = json.loads((ddp / "metrics.json").read_text())
    for key in ("test/zsl_acc", "test/gzsl_s", "test/gzsl_u", "test/gzsl_H"):
        assert second[key] == pytest.approx(first[key], abs=2e-3), key  # ≤ ~3 test images
    # Only rank 0 writes the job's files; Lightning's other rank adds no .hydra of its own.
    assert sorted(p.name for p in ddp.iterdir()) == sorted(p.name for p in single.iterdir())


@pytest.mark.slow
def test_eval_under_ddp_equals_single_process_eval(runs, tmp_path):
    """Each evaluation image is scored by exactly one rank: the summed counts and the gathered
    distances give every metric of one process, exactly."""
    ckpt = runs["single"] / "checkpoints" / "last.ckpt"
    cfg = compose_config([f"ckpt_path={ckpt}"], tmp_path / "single", config_name="eval")
    single = evaluate(cfg)
    folder = run_module("src.eval", [f"ckpt_path={ckpt}", "trainer=ddp_cpu"], tmp_path / "ddp")
    ddp = json.loads((folder / "metrics.json").read_text())
    assert {k for k in ddp if k.startswith("test/")} == set(single)
    assert {k: ddp[k] for k in single} == single


@pytest.mark.slow
def test_processes_started_by_slurm_share_one_job_folder(tmp_path):
    """The multirun + DDP recipe (hydra/launcher=slurm, tasks_per_node = trainer.devices):
    SLURM starts one process per device and Lightning joins them (nothing re-executed). Two
    processes with a SLURM task environment stand in for srun; hydra.run.dir is what the
    submitit launcher gives every task of a job."""
    with socket.socket() as s:  # a free port for the process group
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    folder = tmp_path / "job"
    args = [*TRAIN_ARGS, PROBE, "trainer=ddp_cpu", "trainer.max_epochs=2"]
    command = cli_command("src.train", [*args, f"hydra.run.dir={folder}"])
    slurm = {
        "SLURM_NTASKS": "2",
        "SLURM_NTASKS_PER_NODE": "2",
        "SLURM_NNODES": "1",
        "SLURM_NODEID": "0",
        "SLURM_JOB_ID": "4242",
        "SLURM_JOB_NAME": "train",
        "SLURM_NODELIST": "127.0.0.1",
        "MASTER_PORT": str(port),
    }
    tasks = [
        subprocess.Popen(
            command,
            cwd=ROOT,
            env=cli_env({**slurm, "SLURM_PROCID": str(r), "SLURM_LOCALID": str(r)}),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for r in range(2)
    ]
    outputs = [task.communicate(timeout=600)[0] for task in tasks]
    assert [task.returncode for task in tasks] == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
    assert "Metrics written to" in outputs[0] and "Metrics written to" not in outputs[1]
    assert (folder / "metrics.json").is_file() and (folder / "config.yaml").is_file()
    for epoch in range(2):
        assert torch.equal(probe(folder, epoch, 0)["pool"], probe(folder, epoch, 1)["pool"])
