"""Checkpoints are read with torch's restricted unpickler: a foreign type is refused, never built.

A checkpoint copied from someone else may hold an object of any class; the full unpickler
reconstructs it (running that class's code) before anything can check the file. Here a real
checkpoint gets one extra object of a class defined only in this module, whose reconstruction
records that it ran: ``src.eval``, a resume and ``resume_sweep``'s search for a checkpoint to
continue from must refuse the file, in one line naming it, with the record still empty.
"""

from __future__ import annotations

import torch
from cli_utils import launch_in_process
from hydra_utils import QUIET, compose_config

from src.runs.checkpoints import (
    ForeignTypesError,
    newest_valid_checkpoint,
    read_checkpoint,
    restricted_load,
)
from src.train import train

#: every reconstruction of a :class:`Trap` appends here
RAN: list[str] = []


class Trap:
    """An object whose unpickling records itself (as a malicious payload would run code)."""

    def __init__(self, label: str = "trap") -> None:
        self.label = label

    def __setstate__(self, state: dict) -> None:
        RAN.append(state["label"])
        self.__dict__.update(state)


def _trained_checkpoint(tmp_path):
    run = tmp_path / "trained"
    train(compose_config([*QUIET, "trainer.max_epochs=1"], run))
    return run / "checkpoints" / "last.ckpt"


def _with_trap(source, target):
    checkpoint = torch.load(source, weights_only=True)
    checkpoint["hyper_parameters"]["note"] = Trap()
    torch.save(checkpoint, target)
    return target


def test_the_trap_runs_under_the_full_unpickler(tmp_path):
    """The test's premise: the full unpickler builds the object (so the refusals below mean
    something)."""
    path = tmp_path / "trap.pt"
    torch.save({"state_dict": {}, "x": Trap("full")}, path)
    RAN.clear()
    torch.load(path, weights_only=False)
    assert RAN == ["full"]
    RAN.clear()


def test_framework_checkpoints_load_restricted_and_foreign_types_are_refused(tmp_path, capfd):
    last = _trained_checkpoint(tmp_path)
    checkpoint = restricted_load(last)  # what the framework writes passes the restricted loader
    assert "state_dict" in checkpoint and "zsl_run" in checkpoint
    trapped = _with_trap(last, tmp_path / "shared.ckpt")
    RAN.clear()

    # the library call
    try:
        read_checkpoint(trapped)
    except ForeignTypesError as error:
        message = str(error)
    else:
        raise AssertionError("a checkpoint with a foreign type was read")
    assert f"ckpt_path={trapped}" in message and "test_checkpoint_safety.Trap" in message
    assert "\n" not in message

    # src.eval and a resume through the command line: one line, exit 1, nothing built
    from src.eval import run as eval_job
    from src.train import run as train_job

    for job, config, extra in (
        (eval_job, "eval.yaml", []),
        (train_job, "train.yaml", ["trainer.max_epochs=2"]),
    ):
        argv = ["src/x.py", f"ckpt_path={trapped}", "print_config=false", *extra]
        argv.append(f"paths.log_dir={tmp_path / 'logs'}")
        code, console = launch_in_process(job, config, argv, capfd)
        errors = [line for line in console.splitlines() if line.startswith("Error")]
        assert code == 1 and "Traceback" not in console, console
        assert len(errors) == 1 and f"{trapped} holds objects of types" in errors[0], console
        assert "Trap" in errors[0]

    # a sweep job continuing from its newest checkpoint skips the file, and builds nothing
    folder = tmp_path / "job_checkpoints"
    folder.mkdir()
    _with_trap(last, folder / "epoch_005.ckpt")
    torch.save(torch.load(last, weights_only=True), folder / "last.ckpt")
    found = newest_valid_checkpoint(folder)
    assert found is not None and found[0].name == "last.ckpt"
    assert RAN == []
