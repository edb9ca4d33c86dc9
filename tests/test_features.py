"""Issue 37: ``python -m src.features`` turns images into an xlsa17 features file.

Everything is built here: a generated image folder (PIL, one corrupt file), randomly
initialised backbones of each library (the smallest architectures) saved to a local file and
loaded back through ``features.weights``. The listing, the splits and the byte-stable MATLAB
writer need no backbone; the rest needs the ``features`` extra (``pip install -e
'.[features]'``; CI installs it) and is skipped without it.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cli_utils import ROOT, cli_env, run_cli
from hydra_utils import compose_config
from omegaconf import open_dict

from src.core.errors import ConfigError
from src.features.image_splits import gbu_splits, validation_classes
from src.features.images import folder_images
from src.features.matfile import save_mat

HAS_EXTRA = all(importlib.util.find_spec(m) for m in ("torchvision", "timm", "open_clip"))
needs_extra = pytest.mark.skipif(not HAS_EXTRA, reason="optional: pip install -e '.[features]'")
CLASSES = {"cat": 5, "dog": 4, "zebra": 3}


def make_folder(root: Path, corrupt: bool = True, per_class: int | None = None) -> Path:
    """``root/images/<class>/<i>.png`` (random 48 × 40 images; :data:`CLASSES` of them, or
    ``per_class`` each), and a corrupt ``dog/bad.jpg``."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for name, count in CLASSES.items():
        count = per_class or count
        (root / "images" / name).mkdir(parents=True)
        for i in range(count):
            pixels = rng.integers(0, 256, size=(40, 48, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / "images" / name / f"{i:02d}.png")
    if corrupt:
        (root / "images" / "dog" / "bad.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    (root / "images" / "notes.txt").write_text("not an image folder")  # a file: no class
    return root / "images"


def test_a_folder_lists_classes_sorted_and_images_in_path_order(tmp_path):
    images = folder_images(make_folder(tmp_path, corrupt=False))
    assert images.classes == ["cat", "dog", "zebra"]
    assert images.names[:2] == ["cat/00.png", "cat/01.png"] and images.names[-1] == "zebra/02.png"
    assert images.labels.tolist() == [1] * 5 + [2] * 4 + [3] * 3


def test_the_gbu_splits_keep_the_rules(tmp_path):
    images = folder_images(make_folder(tmp_path, corrupt=False))
    split = gbu_splits(images, ["zebra"], 0.2, seed=0)
    trainval, seen, unseen = (
        split[k] - 1 for k in ("trainval_loc", "test_seen_loc", "test_unseen_loc")
    )
    assert sorted(np.concatenate([trainval, seen, unseen]).tolist()) == list(range(12))
    assert set(images.labels[unseen]) == {3} and 3 not in set(images.labels[trainval])
    # every seen class keeps test_seen images and training images
    for label in (1, 2):
        assert (images.labels[seen] == label).sum() == 1
        assert (images.labels[trainval] == label).sum() >= 3
    folds = validation_classes(["a", "b", "c", "d", "e", "f"], 0.33, seed=0)
    assert all(len(v) == 1 for v in folds.values())  # ⌊0.33 × 6⌋ = 1 class per fold
    assert len({c for v in folds.values() for c in v}) == 3  # three disjoint slices
    with pytest.raises(ConfigError, match=r"no class folder named \['okapi'\]"):
        gbu_splits(images, ["okapi"], 0.2, seed=0)
    with pytest.raises(ConfigError, match="at least 2 seen classes must remain"):
        gbu_splits(images, ["dog", "zebra"], 0.2, seed=0)


def test_mat_files_are_written_byte_for_byte_the_same(tmp_path):
    contents = {"features": np.arange(6, dtype=np.float32).reshape(2, 3), "name": np.array("x")}
    save_mat(tmp_path / "a.mat", contents)
    save_mat(tmp_path / "b.mat", contents)
    assert (tmp_path / "a.mat").read_bytes() == (tmp_path / "b.mat").read_bytes()
    assert not list(tmp_path.glob("*.partial"))
    from scipy.io import loadmat

    assert loadmat(tmp_path / "a.mat")["features"].tolist() == [[0, 1, 2], [3, 4, 5]]


def features_cfg(tmp_path: Path, overrides: list[str]):
    from src.features.extract import check

    cfg = compose_config(
        [f"paths.data_dir={tmp_path / 'data'}", *overrides], tmp_path / "run", "features"
    )
    check(cfg.features)
    return cfg


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("features.input=zip", "features.input='zip' is invalid: use one of ['folder', 'list']"),
        ("features.bad_images=drop", "features.bad_images='drop' is invalid"),
        ("features.chunk_size=0", "features.chunk_size=0 is invalid: it must be an integer ≥ 1"),
    ],
)
def test_a_bad_setting_is_named_in_one_line(tmp_path, override, message):
    base = ["features.images=x", "features.dataset=mine", "features.split.unseen=[zebra]"]
    with pytest.raises(ConfigError, match=f"^{__import__('re').escape(message)}"):
        features_cfg(tmp_path, [*base, override])


def test_missing_required_settings_are_named(tmp_path):
    with pytest.raises(ConfigError, match=r"features.images is not set"):
        features_cfg(tmp_path, ["features.dataset=mine"])
    with pytest.raises(ConfigError, match=r"features.split.unseen is not set: name the unseen"):
        features_cfg(tmp_path, ["features.images=x", "features.dataset=mine"])
    with pytest.raises(ConfigError, match="bad_images=skip needs input=folder"):
        features_cfg(
            tmp_path,
            [
                "features.images=x",
                "features.dataset=m",
                "features.input=list",
                "features.bad_images=skip",
            ],
        )


def test_without_the_extra_the_install_command_is_named(monkeypatch):
    from src.pretrained.compat import import_torchvision

    monkeypatch.setitem(sys.modules, "torchvision", None)  # as if not installed
    with pytest.raises(ImportError, match=r"pip install -e '\.\[features\]'"):
        import_torchvision()


# ----------------------------------------------------------------- with the features extra
def save_weights(spec: str, path: Path) -> Path:
    """A randomly initialised ``spec`` model's whole state dict, as the library saves it."""
    from src.features.backbones import save_random_weights

    return save_random_weights(spec, path)


@needs_extra
def test_the_torchvision_guard_keeps_torchmetrics_and_the_backbones_importable():
    """In fresh interpreters: where the plain ``import torchvision`` fails (a CUDA torchvision
    beside a CPU torch), importing ``src`` first lets torchmetrics (which imports torchvision
    whenever it is installed) and a torchvision ResNet import and run, and
    ``import_torchvision`` says why in one warning line; where the plain import works, the
    guard does nothing and says nothing."""
    plain = subprocess.run(
        [sys.executable, "-c", "import torchvision"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=cli_env(),
    )
    code = (
        "import logging; logging.basicConfig(level=logging.WARNING)\n"
        "import src, torch, torchmetrics\n"
        "from src.pretrained.compat import import_torchvision\n"
        "tv = import_torchvision(); tv = import_torchvision()\n"
        "model = tv.models.resnet18(weights=None).eval()\n"
        "print('out', tuple(model(torch.zeros(1, 3, 64, 64)).shape))\n"
    )
    guarded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=cli_env()
    )
    assert guarded.returncode == 0, guarded.stderr[-2000:]
    assert "out (1, 1000)" in guarded.stdout
    warned = guarded.stderr.count("C++ extension does not load beside torch")
    assert warned == (1 if "torchvision::nms does not exist" in plain.stderr else 0)


def folder_overrides(tmp_path: Path, dataset: str, weights: Path, chunk_size: int) -> list[str]:
    """A resnet18 extraction of ``tmp_path/images`` into ``tmp_path/data/<dataset>``."""
    return [
        f"features.images={tmp_path / 'images'}",
        f"features.dataset={dataset}",
        f"paths.data_dir={tmp_path / 'data'}",
        "features.split.unseen=[zebra]",
        f"features.signatures={tmp_path / 'signatures.npy'}",
        "features.backbone=torchvision:resnet18",
        f"features.weights={weights}",
        "features.batch_size=2",
        f"features.chunk_size={chunk_size}",
        "features.num_workers=0",
    ]


def extract(tmp_path: Path, extra: list[str], check: bool = True):
    return run_cli(
        "src.features",
        [
            f"features.images={tmp_path / 'images'}",
            "features.dataset=mine",
            f"paths.data_dir={tmp_path / 'data'}",
            "features.split.unseen=[zebra]",
            f"features.signatures={tmp_path / 'signatures.npy'}",
            "features.batch_size=2",
            "features.chunk_size=4",
            "features.num_workers=0",
            f"hydra.run.dir={tmp_path / 'run'}",
            *extra,
        ],
        check=check,
    )


@needs_extra
def test_a_folder_becomes_a_dataset_that_trains(tmp_path):
    """The issue's check: a 3-class folder, torchvision:resnet18 from a local weights file; the
    corrupt image is refused (nothing written), then skipped and recorded; the file loads
    through the xlsa17 loader and src.train trains on it to the end."""
    from scipy.io import loadmat

    make_folder(tmp_path)
    np.save(tmp_path / "signatures.npy", np.random.default_rng(1).normal(size=(3, 8)))
    weights = save_weights("torchvision:resnet18", tmp_path / "resnet18.pt")
    args = ["features.backbone=torchvision:resnet18", f"features.weights={weights}"]
    refused = extract(tmp_path, args, check=False)
    assert refused.returncode == 1
    assert "unreadable image: dog/bad.jpg" in refused.stdout + refused.stderr
    assert "Error: 1 of 13 images cannot be read" in refused.stderr
    assert not (tmp_path / "data" / "mine" / "res101.mat").exists()

    extract(tmp_path, [*args, "features.bad_images=skip"])
    mat = loadmat(tmp_path / "data" / "mine" / "res101.mat")
    images = folder_images(tmp_path / "images")
    kept = [n for n in images.names if n != "dog/bad.jpg"]
    assert mat["features"].shape == (512, 12)
    assert [str(c[0][0]) for c in mat["image_files"]] == kept
    assert mat["labels"].reshape(-1).tolist() == [1] * 5 + [2] * 4 + [3] * 3
    assert [str(c[0][0]) for c in mat["skipped_files"]] == ["dog/bad.jpg"]
    assert str(mat["backbone"][0]) == "torchvision:resnet18"
    assert len(str(mat["weights_sha256"][0])) == 64
    preprocessing = str(mat["preprocessing"][0])  # IMAGENET1K_V1: the GBU features'
    assert "crop_size=[224] resize_size=[256]" in preprocessing
    assert "torch==" in str(mat["versions"][0])
    assert not list((tmp_path / "data" / "mine").glob(".features-*"))  # chunks cleaned up
    for k in (1, 2, 3):
        val = (tmp_path / "data" / "mine" / f"valclasses{k}.txt").read_text().split()
        assert len(val) == 1 and val[0] in {"cat", "dog"}

    run = tmp_path / "train"
    result = run_cli(
        "src.train",
        [
            "data=images",
            "data.dataset=mine",
            f"data.data_dir={tmp_path / 'data'}",
            "data.signatures=att",
            "trainer.max_epochs=1",
            "miner.num_negatives=1",  # 2 seen classes: one negative per image
            f"paths.cache_dir={tmp_path / 'cache'}",
            "print_config=false",
            "callbacks.rich_progress_bar=null",
            f"hydra.run.dir={run}",
        ],
    )
    metrics = __import__("json").loads((run / "metrics.json").read_text())
    assert 0 <= metrics["test/zsl_acc"] <= 1, result.stdout[-2000:]


@needs_extra
def test_an_extraction_stopped_halfway_continues_to_the_same_file(tmp_path, monkeypatch):
    """Stopped after its second chunk (and with a half-written third left behind), the same
    command continues at the third and writes the uninterrupted run's file, byte for byte."""
    import src.features.extract as extract_module
    from src.features.extract import run

    make_folder(tmp_path, corrupt=False)
    np.save(tmp_path / "signatures.npy", np.random.default_rng(1).normal(size=(3, 8)))
    weights = save_weights("torchvision:resnet18", tmp_path / "resnet18.pt")

    def cfg_for(name: str):
        cfg = compose_config(
            folder_overrides(tmp_path, name, weights, 4), tmp_path / "run", "features"
        )
        with open_dict(cfg):
            cfg.paths.cache_dir = str(tmp_path / "cache")
        return cfg

    run(cfg_for("whole"))
    calls = {"n": 0}
    chunk = extract_module.extract_chunk

    def stops_in_the_third(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            chunks = next((tmp_path / "data" / "stopped").glob(".features-*"))
            (chunks / "chunk-00002.npz.partial.npz").write_bytes(b"half")
            raise KeyboardInterrupt
        return chunk(*args, **kwargs)

    monkeypatch.setattr(extract_module, "extract_chunk", stops_in_the_third)
    with pytest.raises(KeyboardInterrupt):
        run(cfg_for("stopped"))
    chunks = next((tmp_path / "data" / "stopped").glob(".features-*"))
    assert sorted(p.name for p in chunks.glob("chunk-?????.npz")) == [
        "chunk-00000.npz",
        "chunk-00001.npz",
    ]
    assert not (tmp_path / "data" / "stopped" / "res101.mat").exists()
    monkeypatch.setattr(extract_module, "extract_chunk", chunk)
    run(cfg_for("stopped"))
    for name in ("res101.mat", "att_splits.mat"):
        whole = (tmp_path / "data" / "whole" / name).read_bytes()
        assert (tmp_path / "data" / "stopped" / name).read_bytes() == whole


@needs_extra
@pytest.mark.parametrize("spec", ["timm:test_resnet", "open_clip:ViT-S-32"])
def test_timm_and_open_clip_backbones_from_local_weights(tmp_path, spec):
    """Each library's smallest model, its own preprocessing and its pooled features (timm) or
    image embedding (open_clip), from a local weights file; another architecture's weights are
    refused in one line naming the file."""
    import torch

    from src.features.backbones import build

    weights = save_weights(spec, tmp_path / "w.pt")
    backbone = build(spec, str(weights))
    assert backbone.provenance["weights_sha256"] and backbone.provenance["backbone"] == spec
    from PIL import Image

    image = backbone.transform(Image.new("RGB", (300, 200), (120, 30, 200)))
    with torch.inference_mode():
        out = backbone.model(image.unsqueeze(0))
    assert out.shape == (1, backbone.dim) and torch.isfinite(out).all()
    if spec.startswith("open_clip"):
        import open_clip

        clip = open_clip.create_model(spec.split(":")[1], pretrained=None)
        clip.load_state_dict(torch.load(weights, weights_only=True))
        with torch.inference_mode():
            assert torch.allclose(out, clip.encode_image(image.unsqueeze(0)), atol=1e-5)
    other = save_weights("torchvision:resnet18", tmp_path / "other.pt")
    with pytest.raises(ConfigError, match=rf"^{other}: these weights are not {spec}'s: missing"):
        build(spec, str(other))
    with pytest.raises(ConfigError, match=r"no such file"):
        build(spec, str(tmp_path / "absent.pt"))


@needs_extra
def test_clip_signatures_are_clips_zero_shot_weights_one_per_class(tmp_path):
    """data.signatures=clip: each class name (normalised) in every template, through the open_clip
    text tower; the prompts' unit embeddings averaged and normalised; cached by content."""
    import torch

    from src.data.att_splits import class_signatures
    from src.data.text_signatures import normalise_class_name

    weights = save_weights("open_clip:ViT-S-32", tmp_path / "clip.pt")
    options = {
        "model": "ViT-S-32",
        "weights": str(weights),
        "templates": ["a photo of a {}.", "a {} in the wild."],
    }
    names = ["zebra", "grizzly+bear", "002.Laysan_Albatross"]
    signatures = class_signatures({}, tmp_path, "clip", names, tmp_path / "cache", options)
    assert signatures.shape[0] == 3 and signatures.dtype == np.float32
    assert np.allclose(np.linalg.norm(signatures, axis=1), 1, atol=1e-5)
    import open_clip

    clip = open_clip.create_model("ViT-S-32", pretrained=None).eval()
    clip.load_state_dict(torch.load(weights, weights_only=True))
    tokens = open_clip.get_tokenizer("ViT-S-32")(
        [t.format(normalise_class_name("grizzly+bear")) for t in options["templates"]]
    )
    with torch.inference_mode():
        prompts = clip.encode_text(tokens)
    prompts = prompts / prompts.norm(dim=-1, keepdim=True)
    expected = prompts.mean(0) / prompts.mean(0).norm()
    assert np.allclose(signatures[1], expected.numpy(), atol=1e-5)
    assert len(list((tmp_path / "cache").glob("clip_signatures-*"))) == 1
    again = class_signatures({}, tmp_path, "clip", names, tmp_path / "cache", options)
    assert np.array_equal(again, signatures)  # from the cache
    with pytest.raises(ConfigError, match=r"every template needs a '\{\}'"):
        class_signatures({}, tmp_path, "clip", names, None, {**options, "templates": ["a cat"]})


@needs_extra
def test_the_extraction_benchmark_times_both_paths_on_the_same_images():
    """``python -m src.bench --extraction``: the framework's path and the plain loop read the
    same generated images into the same model; both rates are real numbers of images/s."""
    import torch

    from src.bench.extraction import measure

    result = measure(
        "torchvision:resnet18", images=4, batch_size=2, workers=0, device=torch.device("cpu")
    )
    assert result["dim"] == 512 and result["images"] == 4
    assert result["framework_images_per_s"] > 0 and result["plain_images_per_s"] > 0
    ratio = result["plain_images_per_s"] / result["framework_images_per_s"]
    assert result["ratio"] == pytest.approx(1 / ratio)


@needs_extra
def test_a_listed_dataset_keeps_its_image_order_and_labels(tmp_path):
    """Input (a): the image_files of an existing res101.mat (the release's absolute paths of
    another machine), rewritten under features.images; the new file keeps that order and
    those labels (so att_splits.mat's indices still apply), and writes no att_splits.mat."""
    from scipy.io import loadmat, savemat

    from src.features.extract import run

    make_folder(tmp_path, corrupt=False)
    order = [("zebra", 2), ("cat", 0), ("dog", 3), ("cat", 4), ("zebra", 0), ("dog", 1)]
    labels = {"cat": 1, "dog": 2, "zebra": 3}
    entries = [f"/BS/xian/work/data/AWA2//images/{c}/{i:02d}.png" for c, i in order]
    savemat(
        tmp_path / "release.mat",
        {
            "image_files": np.array([[e] for e in entries], dtype=object),
            "labels": np.array([[labels[c]] for c, _ in order], dtype=float),
            "features": np.zeros((4, len(order))),
        },
    )
    weights = save_weights("torchvision:resnet18", tmp_path / "resnet18.pt")
    cfg = compose_config(
        [
            "features.input=list",
            f"features.image_list={tmp_path / 'release.mat'}",
            f"features.images={tmp_path / 'images'}",
            "features.dataset=AWA2",
            "features.file=resnet18.mat",
            f"paths.data_dir={tmp_path / 'data'}",
            "features.backbone=torchvision:resnet18",
            f"features.weights={weights}",
            "features.batch_size=4",
            "features.num_workers=0",
        ],
        tmp_path / "run",
        "features",
    )
    written = run(cfg)
    mat = loadmat(written["features"])
    assert [str(c[0][0]) for c in mat["image_files"]] == entries
    assert mat["labels"].reshape(-1).tolist() == [3, 1, 2, 1, 3, 2]
    assert mat["features"].shape == (512, 6)
    assert not (tmp_path / "data" / "AWA2" / "att_splits.mat").exists()
    # a second extraction of the same list writes the same features (deterministic)
    whole = run(
        compose_config([*_overrides(cfg), "features.file=again.mat"], tmp_path / "r2", "features")
    )
    assert np.array_equal(loadmat(whole["features"])["features"], mat["features"])
    with pytest.raises(ConfigError, match=r"features.prefix: image_files entry '/BS/xian"):
        run(
            compose_config(
                [*_overrides(cfg), "features.file=x.mat", "features.prefix=[/nowhere/,/x/]"],
                tmp_path / "r3",
                "features",
            )
        )


def _overrides(cfg) -> list[str]:
    f = cfg.features
    return [
        "features.input=list",
        f"features.image_list={f.image_list}",
        f"features.images={f.images}",
        f"features.dataset={f.dataset}",
        f"paths.data_dir={Path(f.output_dir).parent}",
        f"features.backbone={f.backbone}",
        f"features.weights={f.weights}",
        "features.batch_size=4",
        "features.num_workers=0",
    ]


@needs_extra
def test_an_extraction_killed_with_sigkill_continues_to_the_same_file(tmp_path):
    """The issue's check with a real ``kill -9``: ``python -m src.features`` killed once its
    fourth chunk is on disk, then run again, writes the uninterrupted run's files byte for
    byte."""
    import os
    import signal
    import time

    from cli_utils import cli_command

    make_folder(tmp_path, corrupt=False, per_class=14)
    np.save(tmp_path / "signatures.npy", np.random.default_rng(1).normal(size=(3, 8)))
    weights = save_weights("torchvision:resnet18", tmp_path / "resnet18.pt")

    def args(dataset: str, run: str) -> list[str]:
        return [*folder_overrides(tmp_path, dataset, weights, 2), f"hydra.run.dir={tmp_path / run}"]

    run_cli("src.features", args("whole", "run1"))
    process = subprocess.Popen(
        cli_command("src.features", args("killed", "run2")),
        cwd=ROOT,
        env=cli_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    folder, deadline = tmp_path / "data" / "killed", time.monotonic() + 300
    while not list(folder.glob(".features-*/chunk-00003.npz")):
        assert process.poll() is None and time.monotonic() < deadline, "ended before the kill"
        time.sleep(0.005)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not (folder / "res101.mat").exists()  # killed halfway: 21 chunks, 4+ on disk
    run_cli("src.features", args("killed", "run3"))
    for name in ("res101.mat", "att_splits.mat", "valclasses1.txt"):
        expected = (tmp_path / "data" / "whole" / name).read_bytes()
        assert (folder / name).read_bytes() == expected


@needs_extra
def test_clip_features_and_clip_signatures_of_one_model_share_a_space(tmp_path):
    """Image features of open_clip:ViT-S-32 and data.signatures=clip of the same weights: one
    space (W = I start; protocol.md names nearest_signature, the cosine of image and text
    embeddings, CLIP's zero-shot classifier). Other weights: plain text embeddings."""
    from types import SimpleNamespace

    from omegaconf import OmegaConf

    from src.data.xlsa17 import Xlsa17DataModule
    from src.protocol.report.write import clip_note

    make_folder(tmp_path, corrupt=False, per_class=8)
    np.save(tmp_path / "signatures.npy", np.random.default_rng(1).normal(size=(3, 8)))
    weights = save_weights("open_clip:ViT-S-32", tmp_path / "clip.pt")
    overrides = folder_overrides(tmp_path, "mine", weights, 8)
    run_cli(
        "src.features",
        [*overrides, "features.backbone=open_clip:ViT-S-32", f"hydra.run.dir={tmp_path / 'run'}"],
    )
    clip = {"model": "ViT-S-32", "weights": str(weights)}

    def module(options):
        dm = Xlsa17DataModule(
            dataset="mine",
            data_dir=str(tmp_path / "data"),
            signatures="clip",
            clip=options,
            l2_features=True,
            l2_signatures=True,
            standardise=False,
        )
        dm.setup()
        return dm

    dm = module(clip)
    assert dm.signature_kind == "clip" and dm.features_in_signature_space
    inputs = SimpleNamespace(test_dm=dm, data_cfg=OmegaConf.create({"clip": clip}))
    assert "`nearest_signature` is CLIP's zero-shot classifier" in clip_note(inputs)
    other = save_weights("open_clip:ViT-S-32", tmp_path / "other.pt")  # same seed: same values
    torch = __import__("torch")
    state = torch.load(other, weights_only=True)
    state["logit_scale"] = state["logit_scale"] + 1  # other weights, other SHA-256
    torch.save(state, other)
    dm_other = module({**clip, "weights": str(other)})
    assert dm_other.signature_kind == "text" and not dm_other.features_in_signature_space
    assert clip_note(SimpleNamespace(test_dm=dm_other, data_cfg=inputs.data_cfg)) == ""
