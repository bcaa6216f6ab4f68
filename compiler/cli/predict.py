"""``loopc predict MODEL[@ALIAS|VERSION] INPUT -o OUTPUT``: score Parquet or CSV rows with a registered model."""

from __future__ import annotations

import argparse
from pathlib import Path

from loopc.compiler.cli.modelref import add_registry_arguments, resolve_version
from loopc.compiler.errors import LoopcError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_registry_arguments(parser)
    parser.add_argument("input", metavar="INPUT",
                        help="Parquet or CSV file, or a folder of them (hive partitions are read too)")
    parser.add_argument("--format", choices=("parquet", "csv"), default=None,
                        help="the input's format (default: csv when INPUT ends in .csv, else parquet)")
    parser.add_argument("-o", "--output", required=True, help="folder of the partitioned Parquet predictions")
    parser.add_argument("--keys", default="", help="comma-separated columns copied to every prediction row")
    parser.add_argument("--write", default="score,label,model_version,timestamp",
                        help="comma-separated outputs: score, label, probabilities, model_version, timestamp")
    parser.add_argument("--batch-id", default=None, help="name of this batch's partition (default: the UTC time)")
    parser.add_argument("--csv-option", action="append", default=[], metavar="KEY=VALUE", type=_csv_option,
                        help="a CSV reader option, as a dataset's source.options takes it (delimiter, quote_char, "
                             "skip_rows, encoding); repeat for several: --csv-option 'delimiter=;'")


def _csv_option(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value


def _names(text: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in text.split(",") if n.strip())


def run(args: argparse.Namespace) -> int:
    from loopc.runtime.export.bundle import ExportError
    from loopc.runtime.export.bundle_score import BundleError, load
    from loopc.runtime.score.batch import ScoreJob, score_to_parquet
    from loopc.runtime.score.resolve import ScoreError, version_bundle
    from loopc.runtime.steps.common import loopc_version

    state, version = resolve_version(args)
    files, filesystem = _glob_files(args.input, args.format)
    job = ScoreJob(source=args.input, output=Path(args.output), keys=_names(args.keys), write=_names(args.write),
                   format=args.format, options=dict(args.csv_option), files=files, filesystem=filesystem,
                   **({"batch_id": args.batch_id} if args.batch_id else {}))
    try:
        model = load(version_bundle(state, version, loopc_version=loopc_version()))
        summary = score_to_parquet(model, job, version.version)
    except (ScoreError, ExportError, BundleError) as exc:
        raise LoopcError(f"predict with {version.model} v{version.version}: {exc}") from None
    print(f"scored {summary['rows']} rows with {version.model} v{version.version} -> {summary['output']}")
    return 0


def _glob_files(path: str, file_format: str | None) -> tuple[tuple[str, ...], object]:
    """The files a glob INPUT (``*``, ``?``, ``[``) names, as the scoring step resolves its source; a path that is no
    glob is read as it is (a file, or a folder with hive partitions): ``((), None)``."""
    if not any(c in path for c in "*?["):
        return (), None
    from loopc.runtime.data.errors import DataError, NoFiles
    from loopc.runtime.data.sources import resolve_files

    try:
        found = resolve_files({"path": path, **({"format": file_format} if file_format else {})}, Path.cwd())
    except NoFiles:
        raise LoopcError(f"predict: INPUT '{path}' matches no files") from None
    except DataError as exc:
        raise LoopcError(f"predict: {exc}") from None
    return tuple(found.path(name) for name in found.names), found.filesystem
