from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from beemanhoney.common.management import (
    INTERRUPTED_EXIT_CODE,
    progress_bar,
    stops_as_interrupts,
)
from catalog.embeddings import current_model_name
from catalog.services import (
    EMBEDDED_MODELS,
    ENCODE_SLICE_ROWS,
    EmbeddingReport,
    IndexRebuildInterrupted,
    embeddings_refresh,
)


class Command(BaseCommand):
    help = "Embed catalog rows whose text or embedding model changed (resumable, batched)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--only",
            choices=sorted(EMBEDDED_MODELS),
            help="embed only this kind of row (default: both)",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=64,
            metavar="N",
            help=(
                "rows written per transaction, each kept if the run is stopped later (default:"
                f" 64); the model encodes the rows {ENCODE_SLICE_ROWS:,} at a time whatever"
                " this is"
            ),
        )
        parser.add_argument(
            "--force", action="store_true", help="re-embed every row, current ones too"
        )
        parser.add_argument("--dry-run", action="store_true", help="count, write nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1")
        with stops_as_interrupts():
            self._backfill(**options)

    def _backfill(self, **options: Any) -> None:
        kinds = [options["only"]] if options["only"] else sorted(EMBEDDED_MODELS)
        for kind in kinds:
            with progress_bar(self, kind) as progress:
                try:
                    report = embeddings_refresh(
                        kind=kind,
                        force=options["force"],
                        batch_size=options["batch_size"],
                        dry_run=options["dry_run"],
                        on_progress=progress,
                    )
                except IndexRebuildInterrupted as exc:
                    raise CommandError(
                        f"{kind}: interrupted while building again the search indexes it had"
                        f" dropped; {', '.join(exc.missing)} missing: searches scan the whole"
                        " table until backfill_embeddings runs again, which builds them",
                        returncode=INTERRUPTED_EXIT_CODE,
                    ) from None
                except KeyboardInterrupt:
                    raise CommandError(
                        _interrupted(kind, force=options["force"], dry_run=options["dry_run"]),
                        returncode=INTERRUPTED_EXIT_CODE,
                    ) from None
                except Exception as exc:
                    raise CommandError(
                        f"{kind}: embedding failed: {type(exc).__name__}: {exc}"
                    ) from exc
            self.stdout.write(
                _summary(kind, report, force=options["force"], dry_run=options["dry_run"])
            )


def _interrupted(kind: str, *, force: bool, dry_run: bool) -> str:
    # No count: rows are read ahead of the model, so "checked" would overstate what was written.
    if dry_run:
        return f"{kind}: interrupted; a dry run writes nothing"
    if force:
        # A run without --force finds the rows it re-embedded current, and the others too.
        return (
            f"{kind}: interrupted; the rows re-embedded before it are kept, and --force again"
            " re-embeds every row"
        )
    return (
        f"{kind}: interrupted; the rows written before it are kept, and a new run embeds the rest"
    )


def _summary(kind: str, report: EmbeddingReport, *, force: bool, dry_run: bool) -> str:
    """One line: what was (or would be) embedded, what was current already (not counted with
    ``force``, which re-embeds it), the model and, where rows were encoded, their rate."""
    verb = "re-embed" if force else "embed"
    done = f"would {verb}" if dry_run else f"{verb}ded"  # "embedded", "re-embedded"
    # The rate counts rows; an article's passages are embedded with it.
    passages = report.passages_embedded
    with_passages = f" and {passages} passage{'s' if passages != 1 else ''}" if passages else ""
    current = "" if force else f", already current {report.current}"
    if report.saved_meanwhile:
        current += f", saved meanwhile {report.saved_meanwhile} (their own tasks embed them)"
    # A dry run encodes nothing, nor does a run with nothing to embed: no rate to tell.
    rate = "" if dry_run or not report.embedded else f", {report.rows_per_second:.1f} rows/s"
    if report.model_load_seconds >= 0.1:
        rate += f"; loading the model took {report.model_load_seconds:.1f} s"
    model = current_model_name()
    return f"{kind}: {done} {report.embedded}{with_passages}{current} ({model}{rate})"
