from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from tests.catalog.factories import KnowledgeArticleFactory, ProductFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def stocked_shop_and_own_var_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A shop that is not empty (so no demo data loads) and a var folder of the test's own."""
    ProductFactory.create()
    KnowledgeArticleFactory.create()
    monkeypatch.setattr("beemanhoney.common.management.commands.bootstrap_dev.VAR_DIR", tmp_path)
    monkeypatch.delenv("DJANGO_SUPERUSER_PASSWORD", raising=False)
    return tmp_path


def bootstrap() -> str:
    out = StringIO()
    call_command("bootstrap_dev", stdout=out)
    return out.getvalue()


def test_a_new_admin_gets_a_password_kept_in_var_and_shown(tmp_path: Path) -> None:
    output = bootstrap()

    password = (tmp_path / "admin-password.txt").read_text()
    assert f"Admin login: admin / {password}  (from {tmp_path}" in output
    assert get_user_model().objects.get(username="admin").check_password(password)


def test_an_admin_made_from_the_environment_is_not_shown_a_password_it_lacks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "first-env-password")
    bootstrap()
    monkeypatch.delenv("DJANGO_SUPERUSER_PASSWORD")

    output = bootstrap()

    assert "Admin login: admin, with the password it was given" in output
    assert not (tmp_path / "admin-password.txt").exists()


def test_a_later_environment_password_is_not_shown_for_an_admin_made_before_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bootstrap()
    password = (tmp_path / "admin-password.txt").read_text()
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a-later-env-password")

    output = bootstrap()

    assert f"Admin login: admin / {password}  (from {tmp_path}" in output
    assert "a-later-env-password" not in output


def test_an_empty_password_file_left_by_a_crash_gets_a_password_written(tmp_path: Path) -> None:
    (tmp_path / "admin-password.txt").touch(mode=0o600)

    output = bootstrap()

    password = (tmp_path / "admin-password.txt").read_text()
    admin = get_user_model().objects.get(username="admin")
    assert password
    assert admin.check_password(password)
    assert not admin.check_password("")
    assert f"Admin login: admin / {password}  (from {tmp_path}" in output


def test_no_superuser_beside_a_user_named_admin_is_one_line_and_nothing_written(
    tmp_path: Path,
) -> None:
    get_user_model().objects.create_user("admin", password="theirs")

    with pytest.raises(CommandError) as refused:
        bootstrap()

    assert str(refused.value) == (
        "there is no superuser, and the user 'admin' is not one: make one (`python manage.py"
        " createsuperuser`), or give 'admin' another name so that this makes it"
    )
    assert not (tmp_path / "admin-password.txt").exists()
    assert get_user_model().objects.get(username="admin").check_password("theirs")
