from django.apps import AppConfig


class CommonConfig(AppConfig):
    name = "beemanhoney.common"
    label = "common"
