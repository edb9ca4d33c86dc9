"""A protocol folder holds one protocol: its settings are saved and checked on every rerun."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from src.utils.config_diff import canonical_target, is_target

#: settings that change how fast a protocol runs, not what it computes
NOT_RESULTS = {"protocol.threads"}


def check_same_config(cfg: DictConfig, folder: Path) -> None:
    """A protocol continued in its folder must be the same protocol: stop if a setting differs."""
    path = folder / "protocol_config.yaml"
    current = {
        k: OmegaConf.to_container(cfg[k], resolve=True) for k in ("data", "model", "protocol")
    }
    current["seed"] = cfg.seed
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(OmegaConf.to_yaml(OmegaConf.create(current)))
        return
    saved, now = _flat(OmegaConf.to_container(OmegaConf.load(path))), _flat(current)
    keys = (set(saved) | set(now)) - NOT_RESULTS
    differ = sorted(key for key in keys if _compared(saved, key) != _compared(now, key))
    if differ:
        raise ValueError(
            f"{folder} holds a protocol run with other settings ({', '.join(differ)}): "
            "continue it with the same command, or choose a new hydra.run.dir."
        )


def _compared(flat: dict, key: str) -> object:
    """A setting as compared: a ``_target_`` by its defining module (either spelling)."""
    value = flat.get(key)
    return canonical_target(value) if is_target(key) else value


def _flat(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


REFERENCES = ("nearest_signature", "eszsl", "untrained")


def check_protocol_settings(p: DictConfig, conf_dir: Path) -> None:
    """Every ``protocol.*`` value, checked before any data is read (one line naming the key)."""
    strategies = sorted(f.stem for f in (conf_dir / "miner").glob("*.yaml"))

    def fail(key: str, value: object, allowed: str) -> None:
        raise ValueError(f"protocol.{key}={value} is invalid: {allowed}.")

    if not p.strategies or any(s not in strategies for s in p.strategies):
        fail("strategies", list(p.strategies), f"use a non-empty list of {strategies}")
    if any(r not in REFERENCES for r in p.references):
        fail("references", list(p.references), f"use a list of {list(REFERENCES)}")
    for key in ("n_trials", "max_epochs"):
        if not isinstance(p[key], int) or p[key] < 1:
            fail(key, p[key], "it must be an integer ≥ 1")
    if not p.folds or any(f not in (1, 2, 3) for f in p.folds):
        fail("folds", list(p.folds), "use a non-empty list of 1, 2, 3")
    if not p.seeds or any(not isinstance(s, int) or s < 0 for s in p.seeds):
        fail("seeds", list(p.seeds), "use a non-empty list of integers ≥ 0")
    smoothing = p.get("smoothing", 1)
    if smoothing != "auto" and (not isinstance(smoothing, int) or smoothing < 1):
        fail("smoothing", smoothing, "use auto or an integer ≥ 1")
    if not str(p.selection_metric).startswith("val/"):
        fail("selection_metric", p.selection_metric, "choose on a val/ metric, never a test one")
