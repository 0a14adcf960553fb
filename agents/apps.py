from django.apps import AppConfig


class AgentsConfig(AppConfig):
    name = "agents"

    def ready(self) -> None:
        from django.core import checks

        from agents.checks import turn_time_check

        checks.register(turn_time_check)
