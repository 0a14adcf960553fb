from collections.abc import Sequence
from decimal import Decimal

import factory
from django.contrib.auth.models import Permission, User
from django.utils.text import slugify

from catalog.models import Category, KnowledgeArticle, Product
from tests.conversations.factories import UserFactory

# What a shop manager may do with the catalogue: add and change each kind of row.
CATALOG_MANAGER_PERMISSIONS = tuple(
    f"{action}_{model}"
    for action in ("add", "change")
    for model in ("product", "category", "knowledgearticle")
)


class CatalogStaffFactory(UserFactory):
    """Staff holding ``catalog_permissions`` (catalog codenames; a shop manager's by default),
    not a superuser."""

    class Meta:
        skip_postgeneration_save = True  # the hook sets permissions, not fields

    username = factory.Sequence(lambda n: f"manager{n:04d}")
    is_staff = True

    @factory.post_generation
    def catalog_permissions(
        user: User, create: bool, extracted: Sequence[str] | None, **kwargs: object
    ) -> None:
        codenames = CATALOG_MANAGER_PERMISSIONS if extracted is None else extracted
        user.user_permissions.set(
            Permission.objects.filter(content_type__app_label="catalog", codename__in=codenames)
        )


class CategoryFactory(factory.django.DjangoModelFactory[Category]):
    class Meta:
        model = Category

    name = factory.Sequence(lambda n: f"Test Category {n:04d}")
    slug = factory.LazyAttribute(lambda category: slugify(category.name))
    description = "Honeys gathered from our own apiaries."


class ProductFactory(factory.django.DjangoModelFactory[Product]):
    class Meta:
        model = Product

    sku = factory.Sequence(lambda n: f"T-{n:04d}")
    name = factory.Sequence(lambda n: f"Test Meadow Honey {n:04d} 340g")
    slug = factory.LazyAttribute(lambda product: f"{slugify(product.name)}-{product.sku.lower()}")
    category = factory.SubFactory(CategoryFactory)
    description = "A golden, runny honey from summer meadows with a soft floral sweetness."
    price = Decimal("9.50")
    currency = "GBP"
    weight_grams = 340
    stock = 25
    is_active = True
    tags = factory.LazyFunction(lambda: ["raw", "british"])
    origin = "Yorkshire, England"
    floral_source = "Wildflower"


class KnowledgeArticleFactory(factory.django.DjangoModelFactory[KnowledgeArticle]):
    class Meta:
        model = KnowledgeArticle

    title = factory.Sequence(lambda n: f"Test article {n:04d}")
    slug = factory.LazyAttribute(lambda article: slugify(article.title))
    topic = KnowledgeArticle.Topic.STORAGE
    body = "Keep honey at room temperature with the lid on, away from direct sunlight."
    is_published = True
