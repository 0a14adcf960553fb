import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from catalog.embeddings import current_model_name
from catalog.models import EMBEDDING_DIMENSIONS, KnowledgeArticle, Product
from tests.catalog.factories import (
    CategoryFactory,
    KnowledgeArticleFactory,
    ProductFactory,
    UserFactory,
)

CHANGELIST = reverse("admin:catalog_product_changelist")
IMPORT = reverse("admin:catalog_product_import")
KNOWLEDGE_CHANGELIST = reverse("admin:catalog_knowledgearticle_changelist")
CURRENT = current_model_name()
A_VECTOR = [1 / EMBEDDING_DIMENSIONS**0.5] * EMBEDDING_DIMENSIONS

VALID_CSV = (
    "sku,name,category,price,stock,tags\n"
    "BH-RAW-001,Wildflower Raw Honey 500g,Raw Honey,9.50,184,raw;british\n"
    "BH-WAX-001,Beeswax Food Wraps Set of 3,Beeswax Goods,15.95,165,beeswax\n"
)
INVALID_CSV = (
    "sku,name,category,price,stock,tags\n"
    "BH-RAW-001,Wildflower Raw Honey 500g,Raw Honey,9.50,184,raw\n"
    "BH-WAX-001,Beeswax Food Wraps Set of 3,Beeswax Goods,-2,165,beeswax\n"
)


@pytest.fixture
def staff_client(client: Client) -> Client:
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def csv_upload(content: str, name: str = "catalog.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content.encode(), content_type="text/csv")


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


@pytest.fixture
def products() -> dict[str, Product]:
    return {
        "current": ProductFactory(
            stock=5, embedding=A_VECTOR, embedding_model=current_model_name()
        ),
        "other": ProductFactory(stock=0, embedding=A_VECTOR, embedding_model="openai:old-model"),
        "missing": ProductFactory(stock=3),
    }


# --- changelist -------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, {"current", "other", "missing"}),
        ({"in_stock": "yes"}, {"current", "missing"}),
        ({"in_stock": "no"}, {"other"}),
        ({"embedding": "current"}, {"current"}),
        ({"embedding": "other"}, {"other"}),
        ({"embedding": "missing"}, {"missing"}),
        ({"in_stock": "yes", "embedding": "missing"}, {"missing"}),
    ],
)
def test_product_changelist_renders_with_each_filter(
    staff_client: Client, products: dict[str, Product], params: dict[str, str], expected: set[str]
) -> None:
    response = staff_client.get(CHANGELIST, params)

    shown = set(response.context["cl"].result_list)
    assert response.status_code == 200
    assert shown == {products[name] for name in expected}
    assert IMPORT in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("state", ["current", "other", "missing"])
def test_knowledge_changelist_renders_with_the_embedding_filter(
    staff_client: Client, state: str
) -> None:
    articles = {
        "current": KnowledgeArticleFactory(
            embedding=A_VECTOR, embedding_model=current_model_name()
        ),
        "other": KnowledgeArticleFactory(embedding=A_VECTOR, embedding_model="openai:old-model"),
        "missing": KnowledgeArticleFactory(),
    }

    response = staff_client.get(KNOWLEDGE_CHANGELIST, {"embedding": state})

    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [articles[state]]


@pytest.mark.django_db
def test_the_admin_is_for_staff_only(client: Client) -> None:
    client.force_login(UserFactory(is_staff=False))

    response = client.get(IMPORT)

    assert response.status_code == 302
    assert response.url.startswith(reverse("admin:login"))


# --- import view ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_import_view_shows_the_upload_form(staff_client: Client) -> None:
    response = staff_client.get(IMPORT)

    assert response.status_code == 200
    assert 'type="file"' in response.content.decode()


@pytest.mark.django_db
def test_import_view_loads_an_uploaded_csv_and_redirects(staff_client: Client) -> None:
    response = staff_client.post(IMPORT, {"file": csv_upload(VALID_CSV)})

    assert response.status_code == 302
    assert response.url == CHANGELIST
    assert set(Product.objects.values_list("sku", flat=True)) == {"BH-RAW-001", "BH-WAX-001"}
    assert messages_of(response) == [
        "Imported catalog.csv: created 2, updated 0, unchanged 0, invalid 0"
    ]


@pytest.mark.django_db
def test_import_view_shows_row_errors_and_writes_nothing(staff_client: Client) -> None:
    response = staff_client.post(IMPORT, {"file": csv_upload(INVALID_CSV)})

    content = response.content.decode()
    assert response.status_code == 200
    assert "1 invalid row(s); nothing was imported" in content
    assert "row 2: price: must be between 0 and 99999999.99" in content
    assert not Product.objects.exists()


@pytest.mark.django_db
def test_import_view_can_skip_invalid_rows(staff_client: Client) -> None:
    response = staff_client.post(IMPORT, {"file": csv_upload(INVALID_CSV), "skip_invalid": "on"})

    assert response.status_code == 302
    assert list(Product.objects.values_list("sku", flat=True)) == ["BH-RAW-001"]
    assert messages_of(response) == [
        "Imported catalog.csv: created 1, updated 0, unchanged 0, invalid 1",
        "row 2: price: must be between 0 and 99999999.99",
    ]


@pytest.mark.django_db
def test_import_view_shows_why_a_file_cannot_be_read(staff_client: Client) -> None:
    response = staff_client.post(IMPORT, {"file": csv_upload(VALID_CSV, name="catalog.xlsx")})

    assert response.status_code == 200
    assert "the file name must end in .csv or .json" in response.content.decode()
    assert not Product.objects.exists()


# --- actions ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_re_embed_action_queues_the_selected_rows_and_says_so(
    staff_client: Client, products: dict[str, Product], django_capture_on_commit_callbacks
) -> None:
    selected = [products["current"].pk, products["other"].pk]

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = staff_client.post(
            CHANGELIST, {"action": "re_embed", "_selected_action": selected}
        )

    assert response.status_code == 302
    assert messages_of(response) == ["Queued 2 row(s) for embedding."]
    assert len(callbacks) == 1


@pytest.mark.django_db
def test_saving_an_article_in_the_admin_queues_its_embedding(
    staff_client: Client, django_capture_on_commit_callbacks
) -> None:
    data = {"title": "Storing honey", "slug": "storing-honey", "topic": "storage", "body": "Cool."}
    data["is_published"] = "on"

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = staff_client.post(reverse("admin:catalog_knowledgearticle_add"), data)

    assert response.status_code == 302
    assert KnowledgeArticle.objects.get().slug == "storing-honey"
    assert len(callbacks) == 1


@pytest.mark.django_db
def test_adding_a_product_in_the_admin_normalises_tags_and_queues_its_embedding(
    staff_client: Client, django_capture_on_commit_callbacks
) -> None:
    category = CategoryFactory()
    data = {
        "sku": "BH-ADM-001",
        "name": "Hot Honey",
        "slug": "hot-honey",
        "category": category.pk,
        "price": "8.95",
        "currency": "GBP",
        "weight_grams": "340",
        "stock": "10",
        "is_active": "on",
        "tags": "Spicy, HOT,spicy",
    }

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = staff_client.post(reverse("admin:catalog_product_add"), data)

    assert response.status_code == 302
    assert Product.objects.get(sku="BH-ADM-001").tags == ["spicy", "hot"]
    assert len(callbacks) == 1
