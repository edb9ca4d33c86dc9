"""``python -m src.bench``: run the loops of :mod:`src.bench.loops`, print a table and JSON."""

from __future__ import annotations

import argparse
import json
import logging
import warnings

import torch
from rich.console import Console
from rich.table import Table

from src.bench import loops


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="zsl-hardneg benchmark (see src/bench)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--images", type=int, default=7057)
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--classes", type=int, default=150)
    parser.add_argument("--sig-dim", type=int, default=312)
    parser.add_argument("--negatives", type=int, default=5)
    parser.add_argument("--batch-pairs", type=int, default=1024)
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs (after 1 warm-up)")
    parser.add_argument("--pool-images", type=int, default=None, help="1,000,000 on GPU")
    parser.add_argument("--pool-classes", type=int, default=1000)
    parser.add_argument("--budget-mb", type=float, default=256.0, help="pool memory budget")
    parser.add_argument(
        "--extraction",
        metavar="BACKBONE",
        default=None,
        help="time src.features instead (e.g. torchvision:resnet101; needs .[features])",
    )
    parser.add_argument("--extraction-images", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32, help="images per batch (extraction)")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers (extraction)")
    return parser.parse_args()


def extraction_main(args: argparse.Namespace, device: torch.device) -> None:
    """``--extraction``: images/s of src.features against a plain loop (src/bench/extraction.py)."""
    import src  # noqa: F401  (the torchvision guard, before torchvision is imported)
    from src.bench.extraction import measure

    result = measure(args.extraction, args.extraction_images, args.batch_size, args.workers, device)
    table = Table(title=f"{args.extraction} feature extraction on {result['device']}")
    for column in ("measure", "framework", "plain loop"):
        table.add_column(column, justify="right")
    table.add_row(
        "images / s",
        f"{result['framework_images_per_s']:.1f}",
        f"{result['plain_images_per_s']:.1f}",
    )
    table.add_row("framework ÷ loop (speed)", f"{result['ratio']:.2f}", "1.00")
    Console().print(table)
    print(json.dumps(result))


def main() -> None:
    args = parse_args()
    device = torch.device(args.device)
    if args.extraction:
        extraction_main(args, device)
        return
    if args.pool_images is None:
        args.pool_images = 1_000_000 if device.type == "cuda" else 100_000
    logging.getLogger("lightning").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")

    epoch_pairs = args.images * (args.negatives + 1)
    framework_s = loops.framework_epoch_s(args, device)
    # the plain loops under the framework's deterministic kernels (the same math), and the
    # image-major loop once more without them: what reproducibility costs
    with loops.deterministic_kernels(loops.deterministic_mode(device)):
        image_major_s = loops.image_major_epoch_s(args, device)
        per_pair_s = loops.per_pair_epoch_s(args, device)
    with loops.deterministic_kernels(False):
        free_s = loops.image_major_epoch_s(args, device)
    pool_s, pool_mb = loops.pool_refresh(args, device)
    eval64_s, eval32_s = loops.evaluation_s(args, device)
    result = {
        "framework_pairs_per_s": epoch_pairs / framework_s,
        "image_major_pairs_per_s": epoch_pairs / image_major_s,
        "reference_pairs_per_s": epoch_pairs / per_pair_s,
        "ratio": per_pair_s / framework_s,
        "lightning_overhead": framework_s / image_major_s,
        "epoch_s": framework_s,
        "image_major_epoch_s": image_major_s,
        "nondeterministic_epoch_s": free_s,
        "deterministic_cost": image_major_s / free_s,
        "reference_epoch_s": per_pair_s,
        "pool_pairs_per_s": args.pool_images * args.pool_classes / pool_s,
        "pool_refresh_s": pool_s,
        "evaluation_s": eval64_s,
        "evaluation_float32_s": eval32_s,
        "evaluation_float64_cost": eval64_s / eval32_s,
        "pool_peak_mem_mb": pool_mb,
        "pool_budget_mb": args.budget_mb,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(),
        "sizes": {k: getattr(args, k) for k in ("images", "dim", "classes", "sig_dim")},
        "batch_pairs": args.batch_pairs,
    }
    table = Table(title=f"zsl-hardneg benchmark on {result['device']}")
    for column in ("measure", "framework", "plain image-major", "plain per-pair"):
        table.add_column(column, justify="right")
    table.add_row("epoch (s)", f"{framework_s:.3f}", f"{image_major_s:.3f}", f"{per_pair_s:.3f}")
    table.add_row(
        "training pairs / s",
        *(f"{epoch_pairs / s:,.0f}" for s in (framework_s, image_major_s, per_pair_s)),
    )
    table.add_row(
        "framework ÷ loop (time)", "1.00", f"{result['lightning_overhead']:.2f}",
        f"{1 / result['ratio']:.2f}",
    )  # fmt: skip
    table.add_row(
        "deterministic kernels (time, ÷ without)", "", f"{image_major_s / free_s:.2f}", ""
    )
    table.add_row(
        f"pool refresh {args.pool_images:,} × {args.pool_classes:,} (s)", f"{pool_s:.3f}", "", ""
    )
    table.add_row(
        f"evaluation, {args.images:,} × {args.classes} in float64 (s, ÷ float32)",
        f"{eval64_s:.3f} ({eval64_s / eval32_s:.2f}×)", "", "",
    )  # fmt: skip
    table.add_row("pool peak memory (MB)", f"{pool_mb:.0f} (budget {args.budget_mb:.0f})", "", "")
    Console().print(table)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
