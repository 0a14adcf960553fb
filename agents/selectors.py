from __future__ import annotations

from uuid import UUID

from django.contrib.auth.models import AbstractBaseUser

from agents.models import AgentRun
from conversations.models import Message


def agent_run_get(*, owner: AbstractBaseUser, run_id: UUID) -> AgentRun | None:
    return (
        AgentRun.objects.select_related("conversation")
        .filter(pk=run_id, conversation__owner=owner)
        .first()
    )


def agent_run_reply(*, run: AgentRun) -> Message | None:
    return run.replies.filter(role=Message.Role.ASSISTANT).first()
