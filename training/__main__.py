"""``python -m training train|export|prune|inpaint|inpaint-export|inpaint-gate ...``: a thin
argparse shell over ``training.train``, ``training.export``, ``training.prune``,
``training.inpaint`` and ``training.inpaint_gate``."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from shared.cli import ArgumentParser, existing_file, file_to_write

from .inpaint import InpaintTrainConfig
from .inpaint_gate import GateConfig
from .prune import PruneConfig
from .train import TrainConfig


def _add_dataclass_args(parser: argparse.ArgumentParser, cls) -> None:
    for field in dataclasses.fields(cls):
        flag = "--" + field.name.replace("_", "-")
        if field.default is dataclasses.MISSING:
            parser.add_argument(flag, required=True, type=str)
        else:
            parser.add_argument(flag, type=type(field.default), default=field.default)


def _config(cls, args: argparse.Namespace):
    """``cls`` (a config dataclass) from the parsed options of its fields."""
    return cls(**{field.name: getattr(args, field.name) for field in dataclasses.fields(cls)})


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m training", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    train_parser = commands.add_parser("train", help="train or resume a model")
    _add_dataclass_args(train_parser, TrainConfig)
    export_parser = commands.add_parser("export", help="freeze a checkpoint into a model file")
    export_parser.add_argument("--checkpoint", required=True, type=existing_file)
    export_parser.add_argument(
        "--out", required=True, type=file_to_write, help="model file to write (.safetensors)"
    )
    export_parser.add_argument(
        "--card", default=None, type=existing_file, help="JSON file with provenance to embed"
    )
    export_parser.add_argument(
        "--half-weights", action="store_true", help="store transform weights as float16"
    )
    prune_parser = commands.add_parser(
        "prune", help="narrow a realtime-transform model to fewer channels for fine-tuning"
    )
    _add_dataclass_args(prune_parser, PruneConfig)
    inpaint_parser = commands.add_parser("inpaint", help="train or resume the inpainting net")
    _add_dataclass_args(inpaint_parser, InpaintTrainConfig)
    inpaint_export = commands.add_parser(
        "inpaint-export", help="write an inpainting checkpoint as a model file"
    )
    inpaint_export.add_argument("--checkpoint", required=True, type=existing_file)
    inpaint_export.add_argument(
        "--out", required=True, type=file_to_write, help="model file (.safetensors)"
    )
    inpaint_export.add_argument(
        "--card", default=None, type=existing_file, help="JSON file with provenance"
    )
    gate_parser = commands.add_parser(
        "inpaint-gate", help="calibrate when concealment copies instead of inpainting"
    )
    _add_dataclass_args(gate_parser, GateConfig)
    args = parser.parse_args(argv)

    # Option values a config rejects are usage errors, reported before any work.
    configs = {
        "train": TrainConfig,
        "prune": PruneConfig,
        "inpaint": InpaintTrainConfig,
        "inpaint-gate": GateConfig,
    }
    config = None
    if args.command in configs:
        try:
            config = _config(configs[args.command], args)
        except ValueError as error:
            commands.choices[args.command].error(str(error))
    try:
        if args.command == "train":
            from .train import train

            train(config)
        elif args.command == "inpaint":
            from .inpaint import train_inpaint

            train_inpaint(config)
        elif args.command == "prune":
            from .prune import prune

            print(f"wrote {prune(config)} (start for train --init-from)")
        elif args.command == "inpaint-gate":
            from .inpaint_gate import calibrate, print_report

            print_report(calibrate(config))
        elif args.command == "inpaint-export":
            from .inpaint import export_inpaint

            sha = export_inpaint(args.checkpoint, args.out, args.card)
            print(f"wrote {args.out} (content sha256 {sha})")
        else:
            from .export import export

            sha = export(args.checkpoint, args.out, args.card, args.half_weights)
            print(f"wrote {args.out} (content sha256 {sha})")
    except (OSError, ValueError, KeyError) as error:  # ModelFileError is a ValueError
        # A KeyError's str() is the repr of its message, quotes and all.
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"training: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        resumes = args.command in ("train", "inpaint")  # from their last checkpoint
        print(
            "training: interrupted"
            + (" (the same command resumes from the last checkpoint)" if resumes else ""),
            file=sys.stderr,
        )
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
