import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError

from beemanhoney.common.management import (
    INTERRUPTED_EXIT_CODE,
    database_failure,
    progress_bar,
    stops_as_interrupts,
)
from catalog.management.import_command import Commit, atomic_telling_commit
from catalog.models import KnowledgeArticle, Product
from catalog.services import (
    CatalogImportError,
    catalog_statistics_refresh,
    embeddings_refresh,
    knowledge_import,
    product_import,
)

DEMO_DATA_DIR = Path(__file__).resolve().parents[2] / "demo_data"


def _demo_rows(name: str) -> list[dict[str, Any]]:
    return json.loads((DEMO_DATA_DIR / name).read_text(encoding="utf-8"))


class Command(BaseCommand):
    help = "Load the Beeman Honey demo shop (products and knowledge articles) and embed it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="load products only when there are none, and articles only when there are none",
        )

    def handle(self, *args: Any, if_empty: bool, **options: Any) -> None:
        try:
            with stops_as_interrupts():
                self._load(if_empty=if_empty)
        except DatabaseError as exc:
            raise CommandError(f"Demo data: {database_failure(exc)}") from None

    def _load(self, *, if_empty: bool) -> None:
        load_products = not (if_empty and Product.objects.exists())
        load_articles = not (if_empty and KnowledgeArticle.objects.exists())
        if not (load_products or load_articles):
            self.stdout.write(
                "Demo data: the catalog already has products and articles; left as it is"
            )
            return
        products = articles = "left as they were"
        commit = Commit()
        # One transaction: a run stopped between the two imports must not leave products that
        # make every later --if-empty run take the demo shop for loaded.
        try:
            with atomic_telling_commit() as commit:
                if load_products:
                    products = product_import(rows=_demo_rows("products.json")).counts()
                if load_articles:
                    articles = knowledge_import(rows=_demo_rows("knowledge.json")).counts()
        except CatalogImportError as exc:
            raise CommandError(f"Demo data: {exc}: {'; '.join(exc.report.errors)}") from None
        except KeyboardInterrupt:
            # Stopped after the commit, the imports returned: their counts are the summary.
            if not commit.done:
                raise CommandError(
                    "Demo data: interrupted; nothing was loaded", returncode=INTERRUPTED_EXIT_CODE
                ) from None
            raise self._interrupted(f"products {products}; articles {articles}") from None
        summary = f"products {products}; articles {articles}"
        try:
            embedded = 0
            for kind in ("products", "knowledge"):
                with progress_bar(self, f"embedding {kind}") as progress:
                    embedded += embeddings_refresh(kind=kind, on_progress=progress).embedded
        except KeyboardInterrupt:
            raise self._interrupted(summary) from None
        except Exception as exc:
            raise CommandError(
                f"Demo data: {summary}; embedding failed: {type(exc).__name__}: {exc} "
                "(backfill_embeddings embeds what is left)"
            ) from exc
        catalog_statistics_refresh()
        self.stdout.write(f"Demo data: {summary}; embedded {embedded} rows")

    @staticmethod
    def _interrupted(summary: str) -> CommandError:
        """Ctrl-C after the demo shop was saved: the rows embedded so far are kept too."""
        return CommandError(
            f"Demo data: {summary}; interrupted before every row was embedded"
            " (backfill_embeddings embeds what is left)",
            returncode=INTERRUPTED_EXIT_CODE,
        )
