import json

from beemanhoney.common.renderers import JSONRenderer


def test_text_is_written_as_it_is() -> None:
    assert JSONRenderer().render({"price": "£8.50"}) == '{"price":"£8.50"}'.encode()


def test_a_lone_surrogate_is_written_as_an_escape_json_reads_back() -> None:
    data = {"\ud800": ['"\ud800" is not a valid choice.'], "price": "£8.50"}

    written = JSONRenderer().render(data)

    assert written.isascii()
    assert json.loads(written) == data
