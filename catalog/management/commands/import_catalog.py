from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from catalog.product_rows import CatalogFileError, read_catalog_file
from catalog.services import CatalogImportError, product_import


class Command(BaseCommand):
    help = "Upsert products by sku from a CSV or JSON file (all-or-nothing by default)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, help="a .csv or .json catalog file")
        parser.add_argument(
            "--skip-invalid", action="store_true", help="load the valid rows, report the rest"
        )

    def handle(self, *args: Any, file: Path, skip_invalid: bool, **options: Any) -> None:
        try:
            with file.open("rb") as stream:
                rows = read_catalog_file(stream, file.name)
            report = product_import(rows=rows, skip_invalid=skip_invalid)
        except OSError as exc:
            raise CommandError(f"cannot read {file}: {exc.strerror}") from None
        except CatalogFileError as exc:
            raise CommandError(f"{file}: {exc}") from None
        except CatalogImportError as exc:
            for error in exc.report.errors:
                self.stderr.write(error)
            raise CommandError(
                f"{file}: {exc} (use --skip-invalid to load the valid rows)"
            ) from None
        for error in report.errors:
            self.stderr.write(error)
        self.stdout.write(f"Imported {file.name}: {report.summary()}")
