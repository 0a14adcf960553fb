from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from agents.models import AgentRun
from agents.selectors import agent_run_reply
from beemanhoney.common.permissions import staff_may_view
from conversations.models import Message, ReplyFeedback


class AnsweringRunSerializer(serializers.ModelSerializer):
    class Meta:
        model = AgentRun
        fields = ["id", "status"]
        # Outputs: read-only, which the schema calls required (each is always there).
        read_only_fields = fields


class ReplyFeedbackOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = ReplyFeedback
        fields = ["rating", "comment", "created_at", "updated_at"]
        # Outputs: read-only, which the schema calls required (each is always there).
        read_only_fields = fields


class ProductCardSerializer(serializers.Serializer):
    """A product an assistant's reply names, as the chat shows it beside the reply."""

    sku = serializers.CharField()
    name = serializers.CharField()
    price = serializers.DecimalField(max_digits=10, decimal_places=2)
    currency = serializers.CharField()
    stock = serializers.IntegerField()
    in_stock = serializers.BooleanField()


class MessageOutputSerializer(serializers.ModelSerializer):
    # On a customer's message, the run answering it (null with staff): a client that finds it
    # queued or running follows its events for the reply.
    answering_run = AnsweringRunSerializer(read_only=True, allow_null=True)
    cards = serializers.SerializerMethodField(
        help_text="The products an assistant's reply names, in the order it names them."
    )
    feedback = serializers.SerializerMethodField()

    class Meta:
        model = Message
        fields = [
            "id", "conversation", "role", "content", "agent", "run", "answering_run",
            "created_at", "cards", "feedback",
        ]  # fmt: skip
        # Outputs: read-only, which the schema calls required (each is always there).
        read_only_fields = fields

    @extend_schema_field(ProductCardSerializer(many=True))
    def get_cards(self, message: Message) -> list[dict[str, Any]]:
        return message.cards  # stored as the serializer above describes them: no work here

    @extend_schema_field(ReplyFeedbackOutputSerializer(allow_null=True))
    def get_feedback(self, message: Message) -> dict[str, Any] | None:
        """On an assistant's reply, the customer's verdict on it, if they gave one."""
        if message.role != Message.Role.ASSISTANT:
            return None  # no query: only replies take feedback
        feedback = getattr(message, "feedback", None)
        return ReplyFeedbackOutputSerializer(feedback).data if feedback is not None else None


class RunOutputSerializer(serializers.ModelSerializer):
    """A run as its customer sees it; staff who may view runs (the serializer's ``request``
    tells who asks) see its ``usage`` too: the model, its tokens and what it cost."""

    reply = serializers.SerializerMethodField()
    error = serializers.SerializerMethodField()
    # Not read-only, which the schema would call required: customers' runs leave it out. This
    # serializer reads nothing.
    usage = serializers.DictField(required=False)

    class Meta:
        model = AgentRun
        fields = [
            "id", "status", "conversation", "user_message", "route", "agent", "reply", "error",
            "created_at", "started_at", "finished_at", "latency_ms", "usage",
        ]  # fmt: skip
        # Outputs: read-only, which the schema calls required (each is always there).
        read_only_fields = fields

    def to_representation(self, run: AgentRun) -> dict[str, Any]:
        data: dict[str, Any] = super().to_representation(run)
        request = self.context.get("request")
        if request is None or not staff_may_view(request.user, AgentRun):
            del data["usage"]
        return data

    def get_error(self, run: AgentRun) -> str | None:
        """What customers may see: the cause stays in the run for staff (admin)."""
        if run.status == AgentRun.Status.FAILED:
            return "The assistant could not answer this message."
        if run.status == AgentRun.Status.CANCELLED:
            return "This message was not answered: the run was cancelled."
        return None

    @extend_schema_field(MessageOutputSerializer(allow_null=True))
    def get_reply(self, run: AgentRun) -> dict | None:
        reply = agent_run_reply(run=run)
        return MessageOutputSerializer(reply).data if reply else None
