from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from catalog.embeddings import current_model_name
from catalog.services import EMBEDDED_MODELS, embeddings_refresh

INTERRUPTED_EXIT_CODE = 130  # as a shell reports a command Ctrl-C stopped


class Command(BaseCommand):
    help = "Embed catalog rows whose text or embedding model changed (resumable, batched)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--only", choices=sorted(EMBEDDED_MODELS), help="one kind of row")
        parser.add_argument("--batch-size", type=int, default=64)
        parser.add_argument("--force", action="store_true", help="re-embed current rows too")
        parser.add_argument("--dry-run", action="store_true", help="count, write nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1")
        kinds = [options["only"]] if options["only"] else sorted(EMBEDDED_MODELS)
        for kind in kinds:
            with tqdm(desc=kind, unit="row", disable=None, file=self.stderr) as bar:

                def progress(done: int, total: int, bar: tqdm = bar) -> None:
                    bar.total = total
                    bar.update(done - bar.n)

                try:
                    report = embeddings_refresh(
                        kind=kind,
                        force=options["force"],
                        batch_size=options["batch_size"],
                        dry_run=options["dry_run"],
                        on_progress=progress,
                    )
                except KeyboardInterrupt:
                    raise CommandError(
                        # No count: rows are read ahead of the model, so "checked" would
                        # overstate what was written.
                        f"{kind}: interrupted; the rows written before it are kept, and a new"
                        " run embeds the rest",
                        returncode=INTERRUPTED_EXIT_CODE,
                    ) from None
                except Exception as exc:
                    raise CommandError(
                        f"{kind}: embedding failed: {type(exc).__name__}: {exc}"
                    ) from exc
            # A dry run encodes nothing: no rate to tell.
            verb, rate = (
                ("would embed", "")
                if options["dry_run"]
                else ("embedded", f", {report.rows_per_second:.1f} rows/s")
            )
            if report.model_load_seconds >= 0.1:
                rate += f"; loading the model took {report.model_load_seconds:.1f} s"
            # The rate counts rows; an article's passages are embedded with it.
            passages = report.passages_embedded
            with_passages = (
                f" and {passages} passage{'s' if passages != 1 else ''}" if passages else ""
            )
            self.stdout.write(
                f"{kind}: {verb} {report.embedded}{with_passages}, already current "
                f"{report.current} ({current_model_name()}{rate})"
            )
