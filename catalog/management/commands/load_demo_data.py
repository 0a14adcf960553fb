import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from catalog.models import Product
from catalog.services import (
    catalog_statistics_refresh,
    embeddings_refresh,
    knowledge_import,
    product_import,
)

DEMO_DATA_DIR = Path(__file__).resolve().parents[2] / "demo_data"


class Command(BaseCommand):
    help = "Load the Beeman Honey demo shop (products and knowledge articles) and embed it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--if-empty", action="store_true", help="do nothing when the catalog has products"
        )

    def handle(self, *args: Any, if_empty: bool, **options: Any) -> None:
        if if_empty and Product.objects.exists():
            self.stdout.write("Demo data: the catalog already has products; left as it is")
            return
        products = json.loads((DEMO_DATA_DIR / "products.json").read_text())
        articles = json.loads((DEMO_DATA_DIR / "knowledge.json").read_text())
        report = product_import(rows=products)
        knowledge_report = knowledge_import(rows=articles)
        embedded = sum(embeddings_refresh(kind=kind).embedded for kind in ("products", "knowledge"))
        catalog_statistics_refresh()
        self.stdout.write(
            f"Demo data: products {report.summary()}; articles {knowledge_report.summary()}; "
            f"embedded {embedded} rows"
        )
