import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from decimal import Decimal
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction

from beemanhoney.common.ports import free_port
from catalog import embeddings, services
from catalog.embeddings import current_model_name
from catalog.management.commands import (
    backfill_embeddings,
    import_catalog,
    import_knowledge,
    load_demo_data,
)
from catalog.models import Category, KnowledgeArticle, Product
from catalog.services import knowledge_article_update
from tests.catalog.factories import CategoryFactory, KnowledgeArticleFactory, ProductFactory
from tests.catalog.search_support import PRODUCT_HNSW_INDEXES, hnsw_indexes_missing
from tests.support.celery_worker import PROJECT_DIR, producing_to_broker
from tests.support.celery_worker import test_database_url as database_url  # not a test
from tests.support.fake_openai import FakeOpenAIServer, HttpError
from tests.support.transactions import saved_meanwhile

COLUMNS = ["sku", "name", "category", "price", "stock", "tags"]


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def csv_rows() -> list[dict[str, str]]:
    return [
        {
            "sku": "BH-RAW-001",
            "name": "Wildflower Raw Honey 500g",
            "category": "Raw Honey",
            "price": "9.50",
            "stock": "184",
            "tags": "raw;british",
        },
        {
            "sku": "BH-WAX-001",
            "name": "Beeswax Food Wraps Set of 3",
            "category": "Beeswax Goods",
            "price": "15.95",
            "stock": "165",
            "tags": "beeswax;plastic-free",
        },
    ]


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def help_text(command: type[Any], name: str) -> str:
    """The command's --help, its lines joined as argparse wrapped them."""
    return " ".join(command().create_parser("manage.py", name).format_help().split())


# --- import_catalog ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_import_catalog_loads_a_csv_and_prints_a_summary(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "catalog.csv", csv_rows())

    out, _ = run("import_catalog", str(path))

    assert out == (
        "Imported catalog.csv: created 2, updated 0, unchanged 0, invalid 0;"
        " created categories: Raw Honey, Beeswax Goods\n"
    )
    assert Product.objects.get(sku="BH-WAX-001").tags == ["beeswax", "plastic-free"]


@pytest.mark.django_db
def test_import_catalog_of_a_price_list_changes_prices_and_nothing_else(tmp_path: Path) -> None:
    run("import_catalog", str(write_csv(tmp_path / "catalog.csv", csv_rows())))
    prices = tmp_path / "prices.csv"
    prices.write_text(
        "sku,name,category,price\nBH-RAW-001,Wildflower Raw Honey 500g,Raw Honey,9.95\n"
    )

    out, _ = run("import_catalog", str(prices))

    honey = Product.objects.get(sku="BH-RAW-001")
    assert out == "Imported prices.csv: created 0, updated 1, unchanged 0, invalid 0\n"
    assert (honey.price, honey.stock, honey.tags) == (Decimal("9.95"), 184, ["raw", "british"])


@pytest.mark.django_db(transaction=True)  # the queueing waits for the import's commit
def test_import_catalog_with_the_task_queue_unreachable_saves_and_says_what_is_left_to_embed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_csv(tmp_path / "catalog.csv", csv_rows())

    with producing_to_broker(f"redis://127.0.0.1:{free_port()}/0"):
        out, _ = run("import_catalog", str(path))

    assert out.strip() == (
        "Imported catalog.csv: created 2, updated 0, unchanged 0, invalid 0; created categories:"
        " Raw Honey, Beeswax Goods; 2 row(s) not queued for embedding (the task queue cannot be"
        " reached): backfill_embeddings embeds them, or the hourly repair will"
    )
    assert Product.objects.count() == 2
    not_queued = [r for r in caplog.records if r.getMessage() == "catalog.embeddings_not_queued"]
    assert [(r.levelname, r.exc_info) for r in not_queued] == [("WARNING", None)]


@pytest.mark.parametrize(
    ("command", "said"),
    [
        (["import_catalog", "catalog.csv"], "catalog.csv: the database failed (OperationalError: "),
        (["load_demo_data"], "Demo data: the database failed (OperationalError: "),
    ],
    ids=["import_catalog", "load_demo_data"],
)
def test_a_command_that_cannot_reach_the_database_says_so_in_one_line(
    tmp_path: Path, command: list[str], said: str
) -> None:
    write_csv(tmp_path / "catalog.csv", csv_rows())
    env = {
        **os.environ,
        "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
        "DATABASE_CONNECT_TIMEOUT": "1",
    }

    result = subprocess.run(
        [sys.executable, str(PROJECT_DIR / "manage.py"), *command],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr  # one line
    assert result.stderr.startswith(f"CommandError: {said}")


@pytest.mark.django_db
def test_import_catalog_reports_unchanged_rows_on_a_second_run(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "catalog.csv", csv_rows())
    run("import_catalog", str(path))

    out, _ = run("import_catalog", str(path))

    assert out == "Imported catalog.csv: created 0, updated 0, unchanged 2, invalid 0\n"


@pytest.mark.django_db
def test_import_catalog_refuses_a_file_with_an_invalid_row_and_writes_nothing(
    tmp_path: Path,
) -> None:
    rows = csv_rows()
    rows[1]["price"] = "free"
    path = write_csv(tmp_path / "catalog.csv", rows)
    err = StringIO()

    with pytest.raises(CommandError) as excinfo:
        call_command("import_catalog", str(path), stdout=StringIO(), stderr=err)

    message = str(excinfo.value)
    assert "\n" not in message
    assert message.endswith(
        "catalog.csv: 1 invalid row(s); nothing was imported "
        "(use --skip-invalid to load the valid rows)"
    )
    assert err.getvalue() == "line 3: price: 'free' is not a number\n"
    assert not Product.objects.exists()
    assert not Category.objects.exists()


@pytest.mark.django_db
def test_import_catalog_files_a_product_under_a_category_named_in_another_unicode_case(
    tmp_path: Path,
) -> None:
    category = CategoryFactory.create(name="kiwi")
    path = tmp_path / "catalog.csv"
    path.write_text("sku,name,category,price\nBH-KIWI-1,Kiwi Honey,\u212aiwi,9\n")

    out, _ = run("import_catalog", str(path))

    assert out == "Imported catalog.csv: created 1, updated 0, unchanged 0, invalid 0\n"
    assert Product.objects.get(sku="BH-KIWI-1").category == category


@pytest.mark.django_db
def test_import_catalog_files_a_product_under_the_category_its_slug_names(
    tmp_path: Path,
) -> None:
    category = CategoryFactory.create(name="Raw Honey", slug="raw-honey")
    path = tmp_path / "catalog.csv"
    path.write_text("sku,name,category,price\nBH-RAW-001,Wildflower Honey,raw-honey,9\n")

    out, _ = run("import_catalog", str(path))

    assert out == "Imported catalog.csv: created 1, updated 0, unchanged 0, invalid 0\n"
    assert Product.objects.get(sku="BH-RAW-001").category == category
    assert list(Category.objects.all()) == [category]


@pytest.mark.django_db
def test_import_catalog_skips_the_empty_rows_a_spreadsheet_writes_at_the_end(
    tmp_path: Path,
) -> None:
    path = tmp_path / "catalog.csv"
    path.write_text("sku,name,category,price\nBH-RAW-001,Wildflower Honey,Raw Honey,9\n,,,\n,,,\n")

    out, _ = run("import_catalog", str(path))

    assert out.startswith("Imported catalog.csv: created 1, updated 0, unchanged 0, invalid 0;")
    assert list(Product.objects.values_list("sku", flat=True)) == ["BH-RAW-001"]


@pytest.mark.django_db
def test_import_catalog_errors_name_the_line_of_the_csv_file(tmp_path: Path) -> None:
    path = tmp_path / "catalog.csv"
    path.write_text("sku,name,category,price\n\nBH-RAW-001,Wildflower Honey,Raw Honey,free\n")
    err = StringIO()

    with pytest.raises(CommandError):
        call_command("import_catalog", str(path), stdout=StringIO(), stderr=err)

    assert err.getvalue() == "line 3: price: 'free' is not a number\n"


@pytest.mark.django_db
def test_import_catalog_errors_name_the_item_of_the_json_list(tmp_path: Path) -> None:
    path = tmp_path / "catalog.json"
    row = {"sku": "BH-RAW-001", "name": "Wildflower Honey", "category": "Raw Honey"}
    path.write_text(json.dumps([{}, {**row, "price": "free"}]))
    err = StringIO()

    with pytest.raises(CommandError):
        call_command("import_catalog", str(path), stdout=StringIO(), stderr=err)

    assert err.getvalue() == "item 2: price: 'free' is not a number\n"


@pytest.mark.django_db
def test_import_catalog_refuses_a_csv_without_a_required_column(tmp_path: Path) -> None:
    path = tmp_path / "catalog.csv"
    path.write_text("sku,name,category\nBH-RAW-001,Wildflower Raw Honey,Raw Honey\n")

    with pytest.raises(CommandError, match=r"catalog\.csv: missing column\(s\): price$"):
        run("import_catalog", str(path))

    assert not Product.objects.exists()


@pytest.mark.django_db
def test_import_catalog_loads_a_csv_that_excel_saved_with_semicolons(tmp_path: Path) -> None:
    path = tmp_path / "catalog.csv"
    path.write_text('SKU;Name;Category;Price;Tags\nBH-RAW-001;Wildflower;Raw Honey;9;"raw;uk"\n')

    out, _ = run("import_catalog", str(path))

    assert out.startswith("Imported catalog.csv: created 1, updated 0, unchanged 0, invalid 0;")
    assert Product.objects.get(sku="BH-RAW-001").tags == ["raw", "uk"]


@pytest.mark.django_db
def test_import_catalog_says_an_empty_file_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "catalog.csv"
    path.write_text("")

    with pytest.raises(CommandError, match=r"catalog\.csv: the file is empty$"):
        run("import_catalog", str(path))


@pytest.mark.django_db
def test_import_catalog_refuses_a_file_that_does_not_exist(tmp_path: Path) -> None:
    path = tmp_path / "missing.csv"

    with pytest.raises(CommandError, match=r"^cannot read .*missing\.csv: No such file"):
        run("import_catalog", str(path))


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("column", "value", "error"),
    [
        ("stock", "-1", "stock: must not be negative"),
        # Over csv's own 128 KiB limit on a value: still the row's error, not the file's.
        ("name", "x" * 140_000, "name: at most 200 characters"),
    ],
    ids=["a negative stock", "a value over 128 KiB"],
)
def test_import_catalog_with_skip_invalid_loads_the_valid_rows(
    tmp_path: Path, column: str, value: str, error: str
) -> None:
    rows = csv_rows()
    rows[0][column] = value
    path = write_csv(tmp_path / "catalog.csv", rows)

    out, err = run("import_catalog", str(path), "--skip-invalid")

    assert out == (
        "Imported catalog.csv: created 1, updated 0, unchanged 0, invalid 1;"
        " created categories: Beeswax Goods\n"
    )
    assert err == f"line 2: {error}\n"
    assert list(Product.objects.values_list("sku", flat=True)) == ["BH-WAX-001"]


@pytest.mark.django_db
def test_import_catalog_with_skip_invalid_skips_a_json_row_holding_a_lone_surrogate(
    tmp_path: Path,
) -> None:
    rows = csv_rows()
    rows[0]["name"] = "Wildflower \ud800Honey"
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(rows))  # with the escape "\ud800", as JSON writes one

    out, err = run("import_catalog", str(path), "--skip-invalid")

    assert out == (
        "Imported catalog.json: created 1, updated 0, unchanged 0, invalid 1;"
        " created categories: Beeswax Goods\n"
    )
    assert err == (
        "item 1: name: contains a lone surrogate (JSON's \\ud800 to \\udfff), which is no"
        " character\n"
    )
    assert list(Product.objects.values_list("sku", flat=True)) == ["BH-WAX-001"]


@pytest.mark.django_db
def test_import_catalog_with_skip_invalid_fails_when_no_row_is_valid(tmp_path: Path) -> None:
    rows = csv_rows()
    for row in rows:
        row["price"] = "free"
    path = write_csv(tmp_path / "catalog.csv", rows)
    err = StringIO()

    with pytest.raises(CommandError) as excinfo:
        call_command("import_catalog", str(path), "--skip-invalid", stdout=StringIO(), stderr=err)

    assert str(excinfo.value).endswith(
        "catalog.csv: no row is valid (created 0, updated 0, unchanged 0, invalid 2); "
        "nothing was imported"
    )
    assert err.getvalue().count("price: 'free' is not a number") == 2
    assert not Product.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (b'[{"sku": "A-1", "stock": ' + b"9" * 5_000 + b"}]", "a number of more than 4300 digits"),
        (b"[" * 100_000 + b"]" * 100_000, "lists or objects nested too deeply"),
    ],
)
def test_import_catalog_gives_a_one_line_reason_for_json_python_cannot_read(
    tmp_path: Path, document: bytes, reason: str
) -> None:
    path = tmp_path / "catalog.json"
    path.write_bytes(document)

    with pytest.raises(CommandError, match=f"catalog\\.json: invalid JSON: {reason}$"):
        run("import_catalog", str(path))

    assert not Product.objects.exists()


@pytest.mark.django_db
def test_import_catalog_refuses_a_nul_character_in_a_json_list_of_tags(tmp_path: Path) -> None:
    path = tmp_path / "catalog.json"
    path.write_text(
        '[{"sku": "A1", "name": "x", "category": "c", "price": "1", "tags": ["a\\u0000"]}]'
    )

    with pytest.raises(CommandError, match=r"catalog\.json: 1 invalid row\(s\); nothing was"):
        run("import_catalog", str(path))

    assert not Product.objects.exists()


@pytest.mark.django_db
def test_import_catalog_reads_a_decimal_comma_in_a_file_excel_saved_with_semicolons(
    tmp_path: Path,
) -> None:
    path = tmp_path / "catalog.csv"
    path.write_text("sku;name;category;price\nREVIEW-S1;Semi honey;Raw Honey;1,50\n")

    out, _ = run("import_catalog", str(path))

    assert out.startswith("Imported catalog.csv: created 1, updated 0, unchanged 0, invalid 0;")
    assert Product.objects.get(sku="REVIEW-S1").price == Decimal("1.50")


@pytest.mark.django_db
def test_import_catalog_files_a_category_name_of_doubled_spaces_under_the_category(
    tmp_path: Path,
) -> None:
    raw_honey = CategoryFactory.create(name="Raw Honey", slug="raw-honey")
    path = tmp_path / "catalog.csv"
    path.write_text("sku,name,category,price\nBH-1,Clover,Raw  Honey,8\n")

    out, _ = run("import_catalog", str(path))

    assert out == "Imported catalog.csv: created 1, updated 0, unchanged 0, invalid 0\n"
    assert list(Category.objects.all()) == [raw_honey]
    assert Product.objects.get(sku="BH-1").category == raw_honey


@pytest.mark.django_db
def test_import_catalog_refuses_a_new_category_whose_slug_names_an_existing_one(
    tmp_path: Path,
) -> None:
    CategoryFactory.create(name="Review Cider", slug="review-cider")
    path = tmp_path / "catalog.csv"
    path.write_text("sku,name,category,price\nBH-1,Dry cider,Review Cider!,8\n")
    err = StringIO()

    with pytest.raises(CommandError, match=r"catalog\.csv: 1 invalid row\(s\); nothing was"):
        call_command("import_catalog", str(path), stdout=StringIO(), stderr=err)

    assert err.getvalue().startswith(
        "line 2: category: 'Review Cider!' would be a new category, and its slug (review-cider)"
        " names 'Review Cider' already: name that one,"
    )
    assert list(Category.objects.values_list("slug", flat=True)) == ["review-cider"]


@pytest.mark.django_db
@pytest.mark.parametrize("command", ["import_catalog", "import_knowledge"])
def test_ctrl_c_while_an_import_reads_its_file_stops_it_with_one_line(
    command: str, tmp_path: Path, ctrl_c: None
) -> None:
    # A named pipe: the command reads it until the writer closes it, so a real SIGINT, as
    # Ctrl-C sends, arrives while the command is reading.
    path = tmp_path / "rows.csv"
    os.mkfifo(path)
    reader = threading.main_thread().ident
    assert reader is not None

    def type_ctrl_c() -> None:
        with path.open("w") as writer:  # open once the command opens the file
            writer.write("sku,name,category,price\n")
            writer.flush()
            signal.pthread_kill(reader, signal.SIGINT)

    threading.Thread(target=type_ctrl_c, daemon=True).start()

    with pytest.raises(CommandError) as stopped:
        run(command, str(path))

    assert str(stopped.value) == f"{path}: interrupted; nothing was imported"
    assert stopped.value.returncode == 130


@pytest.mark.django_db
def test_ctrl_c_while_import_catalog_writes_leaves_nothing_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ctrl_c: None
) -> None:
    def ctrl_c_after_the_rows_are_written(**options: Any) -> services.ImportReport:
        report = services.product_import(**options)
        assert Product.objects.count() == 2  # written, and not committed
        signal.raise_signal(signal.SIGINT)
        return report

    monkeypatch.setattr(
        import_catalog.Command, "rows_import", staticmethod(ctrl_c_after_the_rows_are_written)
    )
    path = write_csv(tmp_path / "catalog.csv", csv_rows())

    with pytest.raises(CommandError) as stopped:
        run("import_catalog", str(path))

    assert str(stopped.value) == f"{path}: interrupted; nothing was imported"
    assert stopped.value.returncode == 130
    assert not Product.objects.exists()
    assert not Category.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("stopping", [signal.SIGTERM, signal.SIGHUP], ids=["TERM", "HUP"])
def test_a_kill_or_a_closed_terminal_while_import_catalog_writes_leaves_nothing_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stopping: signal.Signals
) -> None:
    def stopped_after_the_rows_are_written(**options: Any) -> services.ImportReport:
        report = services.product_import(**options)
        signal.raise_signal(stopping)
        return report

    monkeypatch.setattr(
        import_catalog.Command, "rows_import", staticmethod(stopped_after_the_rows_are_written)
    )
    path = write_csv(tmp_path / "catalog.csv", csv_rows())
    handler = signal.getsignal(stopping)

    with pytest.raises(CommandError) as stopped:
        run("import_catalog", str(path))

    assert str(stopped.value) == f"{path}: interrupted; nothing was imported"
    assert stopped.value.returncode == 130
    assert not Product.objects.exists()
    assert signal.getsignal(stopping) is handler  # the command's own is gone


@pytest.mark.django_db(transaction=True)
def test_an_import_meeting_a_category_deleted_meanwhile_fails_in_one_line(tmp_path: Path) -> None:
    honey = CategoryFactory.create(name="Raw Honey")
    path = write_csv(tmp_path / "catalog.csv", csv_rows()[:1])

    with (
        saved_meanwhile(lambda: Category.objects.filter(pk=honey.pk).delete()),
        pytest.raises(CommandError) as refused,
    ):
        run("import_catalog", str(path))

    assert "a change saved meanwhile conflicts with this import" in str(refused.value)
    assert str(refused.value).endswith("nothing was imported: try again")
    assert not Product.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_ctrl_c_after_an_import_committed_says_its_rows_are_saved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ctrl_c: None
) -> None:
    # Stopped while the commit's work runs (queueing the rows' embeddings).
    def ctrl_c_after_the_commit(**options: Any) -> services.ImportReport:
        report = services.knowledge_import(**options)
        transaction.on_commit(lambda: signal.raise_signal(signal.SIGINT))
        return report

    monkeypatch.setattr(
        import_knowledge.Command, "rows_import", staticmethod(ctrl_c_after_the_commit)
    )
    path = write_knowledge_csv(tmp_path / "faq.csv", knowledge_csv_rows())

    with pytest.raises(CommandError) as stopped:
        run("import_knowledge", str(path))

    assert str(stopped.value) == (
        f"{path}: interrupted after the import was saved; backfill_embeddings embeds any rows"
        " it had no time to queue"
    )
    assert stopped.value.returncode == 130
    assert KnowledgeArticle.objects.count() == len(knowledge_csv_rows())


# --- import_knowledge -------------------------------------------------------------------------


def write_knowledge_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=["title", "topic", "body", "is_published"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def knowledge_csv_rows() -> list[dict[str, str]]:
    return [
        {
            "title": "How to store honey",
            "topic": "storage",
            "body": "Keep it in a cupboard,\nlid on.",
            "is_published": "yes",
        },
        {"title": "Draft: wholesale", "topic": "orders", "body": "Soon.", "is_published": "no"},
    ]


@pytest.mark.django_db
def test_import_knowledge_loads_a_csv_and_prints_a_summary(tmp_path: Path) -> None:
    path = write_knowledge_csv(tmp_path / "faq.csv", knowledge_csv_rows())

    out, _ = run("import_knowledge", str(path))

    assert out == "Imported faq.csv: created 2, updated 0, unchanged 0, invalid 0\n"
    stored = KnowledgeArticle.objects.get(slug="how-to-store-honey")
    assert (stored.topic, stored.body, stored.is_published) == (
        "storage",
        "Keep it in a cupboard,\nlid on.",
        True,
    )
    assert KnowledgeArticle.objects.get(slug="draft-wholesale").is_published is False
    assert run("import_knowledge", str(path))[0].endswith(
        "created 0, updated 0, unchanged 2, invalid 0\n"
    )


@pytest.mark.django_db
def test_import_knowledge_refuses_a_file_with_an_invalid_row_and_writes_nothing(
    tmp_path: Path,
) -> None:
    rows = knowledge_csv_rows()
    rows[1]["topic"] = ""
    path = write_knowledge_csv(tmp_path / "faq.csv", rows)
    err = StringIO()

    with pytest.raises(CommandError, match=r"faq\.csv: 1 invalid row\(s\); nothing was imported"):
        call_command("import_knowledge", str(path), stdout=StringIO(), stderr=err)

    assert err.getvalue() == "line 3: topic: required\n"
    assert not KnowledgeArticle.objects.exists()


@pytest.mark.django_db
def test_import_knowledge_refuses_a_product_catalog(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "catalog.csv", csv_rows())

    with pytest.raises(
        CommandError, match=r"catalog\.csv: missing column\(s\): title, topic, body$"
    ):
        run("import_knowledge", str(path))


# --- backfill_embeddings ----------------------------------------------------------------------


SUMMARY = re.compile(
    r"^(?P<kind>\w+): (?P<verb>(?:re-)?embedded|would (?:re-)?embed) (?P<embedded>\d+)"
    r"(?: and (?P<passages>\d+) passages?)?"
    r"(?:, already current (?P<current>\d+))? \((?P<model>[^,)]+)"
    r"(?:, (?P<rate>\d+\.\d) rows/s(?:; loading the model took (?P<load>\d+\.\d) s)?)?\)$"
)


def summaries(out: str) -> dict[str, dict[str, str]]:
    lines = [SUMMARY.match(line) for line in out.splitlines()]
    return {match["kind"]: match.groupdict() for match in lines if match}


@pytest.mark.django_db
def test_backfill_embeds_every_kind_and_prints_counts_and_rate() -> None:
    ProductFactory.create_batch(2)
    KnowledgeArticleFactory.create()

    out, _ = run("backfill_embeddings")

    report = summaries(out)
    assert len(out.splitlines()) == 2
    assert (report["products"]["embedded"], report["products"]["current"]) == ("2", "0")
    assert (report["knowledge"]["embedded"], report["knowledge"]["current"]) == ("1", "0")
    assert report["knowledge"]["passages"] == "2"  # the article's title and one paragraph
    assert report["products"]["passages"] is None
    assert report["products"]["model"] == current_model_name()
    assert float(report["products"]["rate"]) > 0
    assert Product.objects.filter(embedding_model=current_model_name()).count() == 2


@pytest.mark.django_db
def test_a_backfill_that_loads_the_model_says_so() -> None:
    ProductFactory.create_batch(3)
    embeddings._backend.cache_clear()  # as in a new process: the first rows load the model

    out, _ = run("backfill_embeddings", "--only", "products")

    report = summaries(out)["products"]
    assert report["embedded"] == "3"
    assert report["load"] is not None
    assert float(report["load"]) > 0


def test_a_model_load_is_left_out_of_the_rate() -> None:
    # 3 rows in 5 s, 2 of them loading the model: 1 row/s, not 0.6 (the load is no row's work).
    report = services.EmbeddingReport(embedded=3, seconds=5.0, model_load_seconds=2.0)

    line = backfill_embeddings._summary("products", report, force=False, dry_run=False)

    assert line.endswith(", 1.0 rows/s; loading the model took 2.0 s)")


def test_a_backfill_summary_counts_the_rows_saved_while_it_ran() -> None:
    report = services.EmbeddingReport(embedded=2, current=1, saved_meanwhile=3, seconds=1.0)

    line = backfill_embeddings._summary("products", report, force=False, dry_run=False)

    assert line.startswith(
        "products: embedded 2, already current 1, saved meanwhile 3 (their own tasks embed them) ("
    )


@pytest.mark.django_db
def test_a_second_backfill_embeds_nothing() -> None:
    ProductFactory.create_batch(2)
    KnowledgeArticleFactory.create()
    run("backfill_embeddings")

    out, _ = run("backfill_embeddings")

    # No rate of rows that were not there to embed.
    assert out.splitlines() == [
        f"knowledge: embedded 0, already current 1 ({current_model_name()})",
        f"products: embedded 0, already current 2 ({current_model_name()})",
    ]


@pytest.mark.django_db
def test_a_backfill_after_an_article_edit_embeds_only_the_passage_that_changed() -> None:
    article = KnowledgeArticleFactory.create(title="Storing", body="Keep it dry.\n\nKeep it warm.")
    run("backfill_embeddings", "--only", "knowledge")
    article = KnowledgeArticle.objects.get(pk=article.pk)
    knowledge_article_update(article=article, body="Keep it dry.\n\nNever in the fridge.")

    out, _ = run("backfill_embeddings", "--only", "knowledge")

    assert out.startswith("knowledge: embedded 1 and 1 passage, already current 0 (")
    assert summaries(out)["knowledge"]["passages"] == "1"


@pytest.mark.django_db
def test_backfill_dry_run_counts_and_writes_nothing() -> None:
    ProductFactory.create_batch(2)

    out, _ = run("backfill_embeddings", "--dry-run", "--only", "products")

    report = summaries(out)
    assert list(report) == ["products"]
    assert (report["products"]["verb"], report["products"]["embedded"]) == ("would embed", "2")
    assert report["products"]["rate"] is None  # nothing was encoded
    assert not Product.objects.filter(embedding__isnull=False).exists()


@pytest.mark.django_db
def test_backfill_force_re_embeds_current_rows() -> None:
    ProductFactory.create_batch(2)
    run("backfill_embeddings", "--only", "products")

    out, _ = run("backfill_embeddings", "--only", "products", "--force", "--batch-size", "1")

    # Nothing is found current under --force, so nothing is said to be.
    report = summaries(out)["products"]
    assert (report["verb"], report["embedded"], report["current"]) == ("re-embedded", "2", None)
    assert float(report["rate"]) > 0


@pytest.mark.django_db
def test_backfill_dry_run_with_force_counts_every_row_to_re_embed() -> None:
    ProductFactory.create_batch(2)
    run("backfill_embeddings", "--only", "products")

    out, _ = run("backfill_embeddings", "--only", "products", "--force", "--dry-run")

    assert out == f"products: would re-embed 2 ({current_model_name()})\n"


@pytest.mark.django_db
def test_ctrl_c_stops_a_backfill_with_a_one_line_reason_and_keeps_its_written_batches(
    monkeypatch: pytest.MonkeyPatch, ctrl_c: None
) -> None:
    # Two rows per model call, so the first progress report follows a written batch; then a
    # real SIGINT, as Ctrl-C sends, inside the service's loop.
    monkeypatch.setattr(services, "ENCODE_SLICE_ROWS", 2)
    refresh = backfill_embeddings.embeddings_refresh

    def ctrl_c_after_the_first_batch(*, on_progress: Any, **options: Any) -> Any:
        def progress(done: int, total: int) -> None:
            on_progress(done, total)
            if done:
                signal.raise_signal(signal.SIGINT)

        return refresh(on_progress=progress, **options)

    monkeypatch.setattr(backfill_embeddings, "embeddings_refresh", ctrl_c_after_the_first_batch)
    ProductFactory.create_batch(5)

    with pytest.raises(CommandError) as stopped:
        run("backfill_embeddings", "--only", "products", "--batch-size", "2")

    assert str(stopped.value) == (
        "products: interrupted; the rows written before it are kept, and a new run embeds the rest"
    )
    assert stopped.value.returncode == 130
    embedded = Product.objects.filter(embedding_model=current_model_name())
    assert embedded.count() == 2
    monkeypatch.undo()
    out, _ = run("backfill_embeddings", "--only", "products")
    report = summaries(out)["products"]
    assert (report["embedded"], report["current"]) == ("3", "2")
    assert embedded.count() == 5


@pytest.mark.django_db
def test_ctrl_c_stops_a_forced_backfill_saying_what_a_new_run_does(
    monkeypatch: pytest.MonkeyPatch, ctrl_c: None
) -> None:
    refresh = backfill_embeddings.embeddings_refresh

    def ctrl_c_at_the_first_batch(*, on_progress: Any, **options: Any) -> Any:
        def progress(done: int, total: int) -> None:
            on_progress(done, total)
            signal.raise_signal(signal.SIGINT)

        return refresh(on_progress=progress, **options)

    monkeypatch.setattr(backfill_embeddings, "embeddings_refresh", ctrl_c_at_the_first_batch)
    ProductFactory.create_batch(3)

    with pytest.raises(CommandError) as stopped:
        run("backfill_embeddings", "--only", "products", "--force", "--batch-size", "1")

    assert str(stopped.value) == (
        "products: interrupted; the rows re-embedded before it are kept, and --force again"
        " re-embeds every row"
    )
    assert stopped.value.returncode == 130


@pytest.mark.django_db(transaction=True)  # the indexes are dropped only outside a transaction
@pytest.mark.parametrize("stopping", [signal.SIGTERM, signal.SIGHUP], ids=["TERM", "HUP"])
def test_a_backfill_stopped_by_a_kill_or_a_closed_terminal_builds_its_dropped_indexes_again(
    monkeypatch: pytest.MonkeyPatch, settings: Any, stopping: signal.Signals
) -> None:
    settings.EMBEDDING_INDEX_REBUILD_MIN_ROWS = 3
    refresh = backfill_embeddings.embeddings_refresh
    dropped_when_stopped = []

    def stopped_at_the_first_batch(*, on_progress: Any, **options: Any) -> Any:
        def progress(done: int, total: int) -> None:
            dropped_when_stopped.append(hnsw_indexes_missing() == list(PRODUCT_HNSW_INDEXES))
            signal.raise_signal(stopping)

        return refresh(on_progress=progress, **options)

    monkeypatch.setattr(backfill_embeddings, "embeddings_refresh", stopped_at_the_first_batch)
    ProductFactory.create_batch(4)

    with pytest.raises(CommandError) as stopped:
        run("backfill_embeddings", "--only", "products", "--force", "--batch-size", "1")

    assert stopped.value.returncode == 130
    assert str(stopped.value).startswith("products: interrupted;")
    assert dropped_when_stopped == [True]
    assert hnsw_indexes_missing() == []


@pytest.mark.django_db(transaction=True)  # the indexes are dropped only outside a transaction
def test_ctrl_c_again_while_a_backfill_builds_its_dropped_indexes_says_which_are_missing(
    monkeypatch: pytest.MonkeyPatch, settings: Any, ctrl_c: None
) -> None:
    settings.EMBEDDING_INDEX_REBUILD_MIN_ROWS = 3
    refresh = backfill_embeddings.embeddings_refresh

    def stopped_at_the_first_batch(*, on_progress: Any, **options: Any) -> Any:
        def progress(done: int, total: int) -> None:
            signal.raise_signal(signal.SIGINT)

        return refresh(on_progress=progress, **options)

    def ctrl_c_again_at_the_first_build(execute: Any, sql: str, *args: Any) -> Any:
        if str(sql).startswith("CREATE INDEX"):  # the DROP is a psycopg Composed
            signal.raise_signal(signal.SIGINT)
        return execute(sql, *args)

    monkeypatch.setattr(backfill_embeddings, "embeddings_refresh", stopped_at_the_first_batch)
    ProductFactory.create_batch(4)

    with (
        connection.execute_wrapper(ctrl_c_again_at_the_first_build),
        pytest.raises(CommandError) as stopped,
    ):
        run("backfill_embeddings", "--only", "products", "--force", "--batch-size", "1")
    missing = hnsw_indexes_missing()
    monkeypatch.undo()
    run("backfill_embeddings", "--only", "products")

    assert stopped.value.returncode == 130
    assert str(stopped.value) == (
        "products: interrupted while building again the search indexes it had dropped;"
        f" {', '.join(PRODUCT_HNSW_INDEXES)} missing: searches scan the whole table until"
        " backfill_embeddings runs again, which builds them"
    )
    assert missing == list(PRODUCT_HNSW_INDEXES)
    assert hnsw_indexes_missing() == []


class Terminal(StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.django_db
def test_the_backfill_progress_bar_on_a_terminal_is_not_styled_as_an_error() -> None:
    ProductFactory.create_batch(2)
    err = Terminal()
    # Given to the command itself, stderr is styled as on a terminal where colour is on: every
    # write an error's red.
    command = backfill_embeddings.Command(stderr=err, force_color=True)

    call_command(command, "--only", "products", stdout=StringIO())

    assert "products: 100%" in err.getvalue()
    assert "\x1b[" not in err.getvalue()
    # One line redrawn ("\r"), not a line for each redraw.
    assert err.getvalue().count("\n") == 1


@pytest.mark.django_db
def test_import_catalog_on_a_terminal_shows_the_rows_written_on_one_line(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "catalog.csv", csv_rows())
    err = Terminal()

    call_command(import_catalog.Command(stderr=err), str(path), stdout=StringIO())

    assert "catalog.csv: 100%" in err.getvalue()
    assert "2/2" in err.getvalue()
    assert err.getvalue().count("\n") == 1


@pytest.mark.django_db
def test_load_demo_data_on_a_terminal_shows_its_embedding_rows() -> None:
    err = Terminal()

    call_command(load_demo_data.Command(stderr=err), stdout=StringIO())

    assert "embedding products: 100%" in err.getvalue()
    assert "embedding knowledge: 100%" in err.getvalue()


@pytest.mark.django_db(transaction=True)
def test_a_backfill_into_a_pipe_writes_no_progress_bar(test_broker_url: str) -> None:
    ProductFactory.create()
    env = {**os.environ, "DATABASE_URL": database_url(), "REDIS_URL": test_broker_url}

    # A new process: it loads the model, whose library would draw a bar of its own.
    result = subprocess.run(
        [sys.executable, "manage.py", "backfill_embeddings", "--only", "products"],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("products: embedded 1, already current 0 (")
    assert "Loading weights" not in result.stderr
    assert "\r" not in result.stderr + result.stdout


def test_backfill_help_tells_what_only_and_batch_size_do() -> None:
    text = help_text(backfill_embeddings.Command, "backfill_embeddings")

    assert "--only {knowledge,products} embed only this kind of row" in text
    assert (
        "--batch-size N rows written per transaction, each kept if the run is stopped"
        " later (default: 64); the model encodes the rows 1,024 at a time"
    ) in text


@pytest.mark.django_db
@pytest.mark.parametrize("size", ["0", "-5"])
def test_backfill_refuses_a_batch_size_below_one(size: str) -> None:
    ProductFactory.create()

    with pytest.raises(CommandError, match=r"^--batch-size must be at least 1$"):
        run("backfill_embeddings", "--batch-size", size)

    assert not Product.objects.filter(embedding_model=current_model_name()).exists()


# --- load_demo_data ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_load_demo_data_creates_an_embedded_shop() -> None:
    out, _ = run("load_demo_data")

    assert Product.objects.count() >= 60
    assert Category.objects.count() >= 8
    assert KnowledgeArticle.objects.count() >= 15
    assert not Product.objects.exclude(embedding_model=current_model_name()).exists()
    assert not KnowledgeArticle.objects.exclude(embedding_model=current_model_name()).exists()
    assert out.startswith("Demo data: products created 66, updated 0, unchanged 0, invalid 0;")


@pytest.mark.django_db
def test_load_demo_data_if_empty_leaves_a_catalog_with_products_and_articles_alone() -> None:
    product = ProductFactory.create(sku="BH-RAW-001", price=Decimal("1.00"))
    article = KnowledgeArticleFactory.create()

    out, _ = run("load_demo_data", "--if-empty")

    product.refresh_from_db()
    assert out == "Demo data: the catalog already has products and articles; left as it is\n"
    assert list(Product.objects.all()) == [product]
    assert product.price == Decimal("1.00")
    assert list(KnowledgeArticle.objects.all()) == [article]


@pytest.mark.django_db
def test_load_demo_data_if_empty_loads_the_articles_of_a_catalog_without_them() -> None:
    product = ProductFactory.create(sku="BH-RAW-001", price=Decimal("1.00"))

    out, _ = run("load_demo_data", "--if-empty")

    product.refresh_from_db()
    assert out.startswith(
        "Demo data: products left as they were; "
        "articles created 31, updated 0, unchanged 0, invalid 0; embedded "
    )
    assert list(Product.objects.all()) == [product]
    assert product.price == Decimal("1.00")
    assert KnowledgeArticle.objects.count() == 31


@pytest.mark.django_db
def test_load_demo_data_loads_products_and_articles_or_neither(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copy(load_demo_data.DEMO_DATA_DIR / "products.json", tmp_path / "products.json")
    (tmp_path / "knowledge.json").write_text(
        json.dumps([{"title": "Honey cake", "topic": "recipes", "body": "Bake it."}])
    )
    monkeypatch.setattr(load_demo_data, "DEMO_DATA_DIR", tmp_path)

    with pytest.raises(CommandError, match=r"^Demo data: 1 invalid row\(s\); .*: item 1: topic:"):
        run("load_demo_data")

    assert not Product.objects.exists()
    assert not KnowledgeArticle.objects.exists()


@pytest.mark.django_db
def test_load_demo_data_gives_a_one_line_reason_when_embedding_fails(
    openai_embeddings: FakeOpenAIServer,
) -> None:
    openai_embeddings.script_embedding_errors(HttpError(503))

    with pytest.raises(CommandError) as excinfo:
        run("load_demo_data")

    assert str(excinfo.value).startswith(
        "Demo data: products created 66, updated 0, unchanged 0, invalid 0; "
        "articles created 31, updated 0, unchanged 0, invalid 0; embedding failed: "
    )
    assert "\n" not in str(excinfo.value)
    assert Product.objects.count() == 66
    assert not Product.objects.filter(embedding_model=current_model_name()).exists()


@pytest.mark.django_db
def test_ctrl_c_while_load_demo_data_embeds_stops_it_with_one_line_and_what_is_left(
    monkeypatch: pytest.MonkeyPatch, ctrl_c: None
) -> None:
    refresh = load_demo_data.embeddings_refresh

    def ctrl_c_as_embedding_starts(**options: Any) -> Any:
        signal.raise_signal(signal.SIGINT)
        return refresh(**options)

    monkeypatch.setattr(load_demo_data, "embeddings_refresh", ctrl_c_as_embedding_starts)

    with pytest.raises(CommandError) as stopped:
        run("load_demo_data")

    products, articles = Product.objects.count(), KnowledgeArticle.objects.count()
    assert str(stopped.value) == (
        f"Demo data: products created {products}, updated 0, unchanged 0, invalid 0; "
        f"articles created {articles}, updated 0, unchanged 0, invalid 0; "
        "interrupted before every row was embedded (backfill_embeddings embeds what is left)"
    )
    assert stopped.value.returncode == 130
    assert products >= 60
    assert not Product.objects.filter(embedding_model=current_model_name()).exists()


@pytest.mark.django_db
def test_ctrl_c_while_load_demo_data_imports_loads_nothing(
    monkeypatch: pytest.MonkeyPatch, ctrl_c: None
) -> None:
    articles_import = load_demo_data.knowledge_import

    def ctrl_c_after_the_articles(**options: Any) -> Any:
        report = articles_import(**options)
        signal.raise_signal(signal.SIGINT)
        return report

    monkeypatch.setattr(load_demo_data, "knowledge_import", ctrl_c_after_the_articles)

    with pytest.raises(CommandError) as stopped:
        run("load_demo_data")

    assert str(stopped.value) == "Demo data: interrupted; nothing was loaded"
    assert stopped.value.returncode == 130
    assert not Product.objects.exists()
    assert not KnowledgeArticle.objects.exists()


@pytest.mark.django_db
def test_load_demo_data_if_empty_loads_an_empty_catalog() -> None:
    run("load_demo_data", "--if-empty")

    assert Product.objects.count() >= 60
