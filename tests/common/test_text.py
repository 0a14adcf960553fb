import pytest

from beemanhoney.common.text import clip


@pytest.mark.parametrize("text", ["heather", "heather honey"])
def test_clip_keeps_text_within_the_limit_with_its_mark(text: str) -> None:
    clipped = clip(text, 10)

    assert len(clipped) <= 10
    assert text.startswith(clipped.removesuffix("…"))


def test_clip_marks_a_cut_with_an_ellipsis_in_place_of_the_last_character() -> None:
    assert clip("heather honey", 10) == "heather h…"


def test_clip_leaves_text_that_fits_exactly_as_it_is() -> None:
    assert clip("heather ho", 10) == "heather ho"
