from catalog.management.import_command import ImportCommand
from catalog.product_rows import PRODUCT_COLUMNS
from catalog.services import product_import


class Command(ImportCommand):
    help = "Upsert products by sku from a CSV or JSON file (all-or-nothing by default)."
    columns = PRODUCT_COLUMNS
    rows_import = staticmethod(product_import)
