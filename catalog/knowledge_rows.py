"""The rows of a knowledge import file and their validation, each error naming its row's place
in the file ("line 5", "item 3")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_slug

from beemanhoney.common.models import max_length_of
from catalog.import_files import (
    FileColumns,
    cell,
    parse_rows,
    row_problems,
    shortened,
    text_of,
    too_long,
)
from catalog.models import ARTICLE_BODY_MAX_LENGTH, KnowledgeArticle, slug_of

KNOWLEDGE_COLUMNS = FileColumns(
    names=("slug", "title", "topic", "body", "is_published"),
    required=("title", "topic", "body"),
    numbers=("is_published",),
    defaulted=("is_published",),
)
MAX_LENGTHS = {
    "slug": max_length_of(KnowledgeArticle, "slug"),
    "title": max_length_of(KnowledgeArticle, "title"),
    "body": ARTICLE_BODY_MAX_LENGTH,
}
TOPICS = tuple(KnowledgeArticle.Topic.values)
# What a spreadsheet or a person writes for a yes or a no.
_YES = ("true", "yes", "y", "1")
_NO = ("false", "no", "n", "0")


@dataclass(frozen=True)
class ArticleRow:
    """A validated row. ``given``: the columns the file gave it (``FileColumns.given``); an
    update writes only those.

    ``slug`` is the article's key: the file's, or else made from the title, so a file without
    slugs updates the same articles each time it is loaded, as long as their titles stay."""

    slug: str
    title: str
    topic: str
    body: str
    is_published: bool
    given: frozenset[str] = frozenset(KNOWLEDGE_COLUMNS.names)


def _published(value: Any) -> bool:
    if isinstance(value, bool):  # JSON
        return value
    text = text_of(value).lower()
    if text == "" or text in _YES:
        return True
    if text in _NO:
        return False
    raise ValueError(f"is_published: {shortened(value)!r} is not one of true, false, yes, no, 1, 0")


def parse_article_row(row: dict[str, Any]) -> ArticleRow:
    """One validated row; ``ValueError`` lists everything wrong with it."""
    problems = row_problems(row, KNOWLEDGE_COLUMNS)
    title = cell(row, "title")
    # A slug made from a title is cut to the field as the API cuts one
    # (``catalog.services._unique_slug``), so a file without slugs updates the article the API
    # made: slugify writes "ﬃ" as "ffi" and "½" as "12", and a title of 200 may make more.
    slug = cell(row, "slug") or slug_of(title)[: MAX_LENGTHS["slug"]].rstrip("-")
    if title and not slug:
        problems.append(
            "slug: the title has no ASCII letters or digits to make one of; give a slug"
        )
    elif slug:
        try:
            validate_slug(slug)
        except ValidationError:
            problems.append(f"slug: {shortened(slug)!r} may hold only letters, digits, - and _")
    problems += too_long(row, MAX_LENGTHS)
    topic = cell(row, "topic").lower()
    if topic and topic not in TOPICS:
        problems.append(f"topic: {shortened(row.get('topic'))!r} is not one of {', '.join(TOPICS)}")
    is_published = True
    try:
        is_published = _published(row.get("is_published"))
    except ValueError as exc:
        problems.append(str(exc))
    if problems:
        raise ValueError("; ".join(problems))
    return ArticleRow(
        slug=slug,
        title=title,
        topic=topic,
        body=cell(row, "body"),
        is_published=is_published,
        given=KNOWLEDGE_COLUMNS.given(row),
    )


def parse_article_rows(rows: list[dict[str, Any]]) -> tuple[list[ArticleRow], list[str]]:
    """Valid rows, and one message per invalid row; slugs must not repeat."""
    return parse_rows(rows, parse_article_row, key="slug")


def article_file_row(article: KnowledgeArticle) -> dict[str, str]:
    """``article`` as a row of an import file: importing it leaves the article unchanged."""
    return {
        "slug": article.slug,
        "title": article.title,
        "topic": article.topic,
        "body": article.body,
        "is_published": "true" if article.is_published else "false",
    }
