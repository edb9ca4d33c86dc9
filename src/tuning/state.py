"""A protocol folder holds one protocol: its settings are saved and checked on every rerun."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

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
    differ = sorted(key for key in keys if saved.get(key) != now.get(key))
    if differ:
        raise ValueError(
            f"{folder} holds a protocol run with other settings ({', '.join(differ)}): "
            "continue it with the same command, or choose a new hydra.run.dir."
        )


def _flat(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
