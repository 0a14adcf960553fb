from catalog.knowledge_rows import KNOWLEDGE_COLUMNS
from catalog.management.import_command import ImportCommand
from catalog.services import knowledge_import


class Command(ImportCommand):
    help = (
        "Upsert knowledge articles by slug (or by a slug made from the title) from a CSV or JSON"
        " file with columns slug, title, topic, body, is_published (all-or-nothing by default)."
    )
    columns = KNOWLEDGE_COLUMNS
    rows_import = staticmethod(knowledge_import)
