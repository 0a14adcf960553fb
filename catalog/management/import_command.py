"""What the catalog's commands share: for ``import_catalog`` and ``import_knowledge``, a file in
and a summary or a reason out (``ImportCommand``); for those and ``load_demo_data``, a
transaction that tells whether it committed."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, transaction

from beemanhoney.common.management import (
    INTERRUPTED_EXIT_CODE,
    database_failure,
    progress_bar,
    stops_as_interrupts,
)
from catalog.import_files import CatalogFileError, FileColumns, read_catalog_file
from catalog.services import CatalogImportError, ImportReport


class Commit:
    """Whether the transaction of ``atomic_telling_commit`` committed."""

    done = False


@contextmanager
def atomic_telling_commit() -> Iterator[Commit]:
    """``transaction.atomic()``, telling whether it committed: a Ctrl-C during the work after
    the commit (queueing the rows' embeddings, refreshing statistics) leaves the rows saved,
    and before it nothing. Its note runs first of the transaction's on-commit work."""
    commit = Commit()
    with transaction.atomic():
        transaction.on_commit(lambda: setattr(commit, "done", True))
        yield commit


class ImportCommand(BaseCommand):
    columns: FileColumns
    # The service that upserts the file's rows: ``(rows=..., skip_invalid=...)``.
    rows_import: Callable[..., ImportReport]

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, help="a .csv or .json file")
        parser.add_argument(
            "--skip-invalid", action="store_true", help="load the valid rows, report the rest"
        )

    def handle(self, *args: Any, file: Path, skip_invalid: bool, **options: Any) -> None:
        commit = Commit()
        try:
            with stops_as_interrupts():
                with file.open("rb") as stream:
                    rows = read_catalog_file(stream, file.name, columns=self.columns)
                with progress_bar(self, file.name) as progress, atomic_telling_commit() as commit:
                    report = self.rows_import(
                        rows=rows, skip_invalid=skip_invalid, on_progress=progress
                    )
        except KeyboardInterrupt:
            raise CommandError(
                f"{file}: interrupted after the import was saved; backfill_embeddings embeds"
                " any rows it had no time to queue"
                if commit.done
                else f"{file}: interrupted; nothing was imported",
                returncode=INTERRUPTED_EXIT_CODE,
            ) from None
        except DatabaseError as exc:
            raise CommandError(f"{file}: {database_failure(exc)}; nothing was imported") from None
        except OSError as exc:
            raise CommandError(f"cannot read {file}: {exc.strerror}") from None
        except CatalogFileError as exc:
            raise CommandError(f"{file}: {exc}") from None
        except CatalogImportError as exc:
            for error in exc.report.errors:
                self.stderr.write(error)
            helps = exc.report.invalid and not skip_invalid
            hint = " (use --skip-invalid to load the valid rows)" if helps else ""
            raise CommandError(f"{file}: {exc}{hint}") from None
        for error in report.errors:
            self.stderr.write(error)
        self.stdout.write(f"Imported {file.name}: {report.summary()}")
