from django.test import Client

from conversations.models import MAX_MESSAGE_LENGTH


def test_the_chat_box_takes_as_many_characters_as_the_api_accepts(client: Client) -> None:
    response = client.get("/chat/")

    assert response.status_code == 200
    assert f'maxlength="{MAX_MESSAGE_LENGTH}"' in response.content.decode()
