from typing import Any
from uuid import UUID

from django.contrib.auth import get_user_model
from django.http import Http404
from django.urls import reverse
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_serializer,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import exceptions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.exceptions import AuthenticationFailed
from rest_framework_simplejwt.serializers import (
    TokenBlacklistSerializer,
    TokenObtainPairSerializer,
    TokenRefreshSerializer,
)
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.views import (
    TokenBlacklistView,
    TokenObtainPairView,
    TokenRefreshView,
    TokenViewBase,
)

from agents.api.serializers import (
    MessageOutputSerializer,
    ReplyFeedbackOutputSerializer,
    RunOutputSerializer,
)
from beemanhoney.common.authentication import (
    PasswordBoundRefreshToken,
    refresh_token_rotate,
    token_password_check,
)
from beemanhoney.common.exceptions import error_body, error_code, error_responses
from beemanhoney.common.pagination import PAGE_PARAMETERS, StandardPagination, page_of
from beemanhoney.common.permissions import MethodAnswered, authenticated_user
from beemanhoney.common.serializers import (
    OneValuePerField,
    PlainIntegerField,
    QueryParamsSerializer,
    StrictSerializer,
)
from beemanhoney.common.throttling import (
    GuestCreateThrottle,
    account_counts_release,
    conversation_quota,
    login_rates_check,
    message_quota,
)
from conversations import selectors, services
from conversations.models import (
    MAX_FEEDBACK_COMMENT_LENGTH,
    MAX_MESSAGE_LENGTH,
    Conversation,
    Message,
    ReplyFeedback,
)

TOKEN_PAIR = inline_serializer(
    "TokenPair", {"access": serializers.CharField(), "refresh": serializers.CharField()}
)


@extend_schema_view(
    post=extend_schema(responses={200: TOKEN_PAIR, **error_responses(400, 401, 429)})
)
class TokenObtainApi(TokenObtainPairView):
    """A JWT pair for a username and password."""

    @extend_schema_serializer(component_name="TokenObtainPair")
    class InputSerializer(OneValuePerField, TokenObtainPairSerializer):
        token_class = PasswordBoundRefreshToken

    serializer_class = InputSerializer
    # simplejwt's none (typed as an empty tuple): a GET was counted as a login before its 405.
    permission_classes = (MethodAnswered,)  # type: ignore[assignment]

    def check_throttles(self, request: Request) -> None:
        # The login rates alone, counted as the admin's login counts them; kept for ``post``.
        self.login_throttles, refused_for = login_rates_check(request)
        if refused_for is not None:
            self.throttled(request, refused_for)

    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().post(request, *args, **kwargs)
        if response.status_code == status.HTTP_200_OK:
            account_counts_release(self.login_throttles)
        return response


class RefreshTokenSerializer(OneValuePerField, TokenRefreshSerializer):
    """Refused (401): a refresh token used or revoked already, a deleted or inactive user's, or
    one issued before its user's password last changed. Each works once, even when two refreshes
    of it arrive together."""

    token_class = PasswordBoundRefreshToken

    def validate(self, attrs: dict[str, Any]) -> dict[str, str]:
        refresh = self.token_class(attrs["refresh"])
        # simplejwt's own lookup raises (a 500) for a deleted user: a guest erased on request.
        # (A user id that is no id the token class refused: ``token_user_id_check``.)
        user = (
            get_user_model()
            ._default_manager.filter(
                **{api_settings.USER_ID_FIELD: refresh.get(api_settings.USER_ID_CLAIM)}
            )
            .first()
        )
        if user is None or not api_settings.USER_AUTHENTICATION_RULE(user):
            raise AuthenticationFailed(
                str(self.error_messages["no_active_account"]), "no_active_account"
            )
        token_password_check(token=refresh, user=user)
        access = str(refresh.access_token)
        refresh_token_rotate(token=refresh, user=user)
        return {"access": access, "refresh": str(refresh)}


class RefreshTokenFieldErrors(TokenViewBase):
    """A refresh token refused (malformed, expired, revoked, or its user gone) is a 401 that
    names the ``refresh`` field, in the API's error shape."""

    # simplejwt's none (typed as an empty tuple): a GET's 405 came after the rates counted it.
    permission_classes = (MethodAnswered,)  # type: ignore[assignment]

    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        try:
            return super().post(request, *args, **kwargs)
        except exceptions.AuthenticationFailed as exc:
            # simplejwt's detail is a dict (the sentence, a code, which token class refused).
            reason = exc.detail["detail"] if isinstance(exc.detail, dict) else exc.detail
            code = error_code(exc, exc.detail)
            refused = serializers.ErrorDetail(str(reason), code=code)
            raise exceptions.AuthenticationFailed(
                {"detail": reason, "code": code, "errors": {"refresh": [refused]}}
            ) from exc


@extend_schema_view(
    post=extend_schema(responses={200: TOKEN_PAIR, **error_responses(400, 401, 429)})
)
class TokenRefreshApi(RefreshTokenFieldErrors, TokenRefreshView):
    """A new token pair for a refresh token, which is revoked: each refresh token works once."""

    serializer_class = RefreshTokenSerializer


class LogoutSerializer(OneValuePerField, TokenBlacklistSerializer):
    """simplejwt's, with the refresh token as this API reads it (``PasswordBoundRefreshToken``
    refuses one with no id, or naming its user by no user id: blacklisting either was a 500)."""

    token_class = PasswordBoundRefreshToken


@extend_schema_view(
    post=extend_schema(
        operation_id="auth_logout",
        request=inline_serializer("LogoutInput", {"refresh": serializers.CharField()}),
        responses={204: None, **error_responses(400, 401, 429)},
    )
)
class TokenLogoutApi(RefreshTokenFieldErrors, TokenBlacklistView):
    """Revoke a refresh token: it can no longer be refreshed (its access token lives out its
    few minutes)."""

    serializer_class = LogoutSerializer

    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        super().post(request, *args, **kwargs)
        return Response(status=status.HTTP_204_NO_CONTENT)


class GuestCreateApi(APIView):
    """A guest customer for a website chat widget; answers with tokens like /auth/token/."""

    # Anyone may; a method it does not answer is a 405 before the rate counts it.
    permission_classes = [MethodAnswered]
    authentication_classes: list[type] = []
    throttle_classes = [GuestCreateThrottle]

    @extend_schema(
        operation_id="auth_guest_create",
        request=None,
        responses={
            201: TOKEN_PAIR,
            **error_responses(429),
        },
    )
    def post(self, request: Request) -> Response:
        refresh = PasswordBoundRefreshToken.for_user(services.guest_customer_create())
        return Response(
            {"access": str(refresh.access_token), "refresh": str(refresh)},
            status=status.HTTP_201_CREATED,
        )


class ConversationOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Conversation
        fields = ["id", "title", "status", "created_at", "updated_at"]
        # Outputs: read-only, which the schema calls required (each is always there).
        read_only_fields = fields


def _own_conversation(request: Request, conversation_id: UUID) -> Conversation:
    conversation = selectors.conversation_get(
        owner=authenticated_user(request), conversation_id=conversation_id
    )
    if conversation is None:
        raise Http404
    return conversation


class ConversationListApi(APIView):
    @extend_schema_serializer(component_name="ConversationInput")
    class InputSerializer(StrictSerializer):
        read_only_names = ("id", "status", "created_at", "updated_at")

        title = serializers.CharField(required=False, allow_blank=True, max_length=120)

    @extend_schema(
        operation_id="conversations_list",
        parameters=PAGE_PARAMETERS,
        responses={
            200: page_of(ConversationOutputSerializer, "Conversation"),
            **error_responses(400, 401, 404, 429),
        },
    )
    def get(self, request: Request) -> Response:
        paginator = StandardPagination()
        page = paginator.paginate_queryset(
            selectors.conversation_list(owner=authenticated_user(request)), request, view=self
        )
        return paginator.get_paginated_response(ConversationOutputSerializer(page, many=True).data)

    @extend_schema(
        operation_id="conversations_create",
        request=InputSerializer,
        responses={201: ConversationOutputSerializer, **error_responses(400, 401, 429)},
    )
    def post(self, request: Request) -> Response:
        payload = self.InputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        # Conversations opened, not requests, count (ADR 0006): a refused one is not counted.
        with conversation_quota(request, self):
            conversation = services.conversation_create(
                owner=authenticated_user(request), title=payload.validated_data.get("title", "")
            )
        location = reverse("conversation-detail", kwargs={"conversation_id": conversation.pk})
        return Response(
            ConversationOutputSerializer(conversation).data,
            status=status.HTTP_201_CREATED,
            headers={"Location": location},
        )


class ConversationDetailApi(APIView):
    @extend_schema(
        operation_id="conversations_retrieve",
        responses={200: ConversationOutputSerializer, **error_responses(401, 404, 429)},
    )
    def get(self, request: Request, conversation_id: UUID) -> Response:
        conversation = _own_conversation(request, conversation_id)
        return Response(ConversationOutputSerializer(conversation).data)

    @extend_schema(
        operation_id="conversations_destroy",
        responses={204: None, **error_responses(401, 404, 409, 429)},
    )
    def delete(self, request: Request, conversation_id: UUID) -> Response:
        services.conversation_delete_by_customer(
            conversation=_own_conversation(request, conversation_id)
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class ConversationCloseApi(APIView):
    """The customer ends the conversation (a chat widget's "new chat"): it takes no more
    messages, and its runs not yet finished are cancelled. Closing a closed one changes
    nothing."""

    @extend_schema(
        operation_id="conversations_close",
        request=None,
        responses={200: ConversationOutputSerializer, **error_responses(401, 404, 429)},
    )
    def post(self, request: Request, conversation_id: UUID) -> Response:
        conversation = services.conversation_close_by_customer(
            conversation=_own_conversation(request, conversation_id)
        )
        return Response(ConversationOutputSerializer(conversation).data)


class MessageListApi(APIView):
    """``GET``: the conversation's messages in order. ``POST``: send one; answered by a run."""

    class FilterSerializer(QueryParamsSerializer):
        after = PlainIntegerField(required=False, min_value=0)

    @extend_schema_serializer(component_name="MessageInput")
    class InputSerializer(StrictSerializer):
        read_only_names = (
            "id",
            "conversation",
            "role",
            "agent",
            "run",
            "created_at",
            "cards",
            "answering_run",
            "feedback",
        )

        content = serializers.CharField(max_length=MAX_MESSAGE_LENGTH, trim_whitespace=True)

    class IdempotencyKeySerializer(serializers.Serializer):
        key = serializers.CharField(max_length=100, required=False, allow_blank=False)

        def validate_key(self, key: str) -> str:
            # The server joins a header sent twice with a comma: "k1,k2" would be stored as a
            # third key, and a retry sending "k1" alone would post the message again.
            if "," in key:
                raise serializers.ValidationError(
                    "Send one key, once, without commas.", code="given_twice"
                )
            return key

    @extend_schema(
        operation_id="messages_list",
        parameters=[FilterSerializer, *PAGE_PARAMETERS],
        responses={
            200: page_of(MessageOutputSerializer, "Message"),
            **error_responses(400, 401, 404, 429),
        },
    )
    def get(self, request: Request, conversation_id: UUID) -> Response:
        params = self.FilterSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        conversation = _own_conversation(request, conversation_id)
        messages = selectors.message_list(
            conversation=conversation, after=params.validated_data.get("after")
        )
        paginator = StandardPagination()
        page = paginator.paginate_queryset(messages, request, view=self)
        return paginator.get_paginated_response(MessageOutputSerializer(page, many=True).data)

    @extend_schema(
        operation_id="messages_create",
        request=InputSerializer,
        parameters=[
            OpenApiParameter(
                "Idempotency-Key", {"type": "string", "minLength": 1, "maxLength": 100},
                OpenApiParameter.HEADER, required=False,
                description="Repeat a POST safely: the same key returns the same message and "
                "run; the same key with other content is refused (422).",
            )
        ],
        responses={
            202: inline_serializer(
                "MessagePosted",
                {"message": MessageOutputSerializer(), "run": RunOutputSerializer(allow_null=True)},
            ),
            **error_responses(400, 401, 404, 409, 422, 429),
        },
    )  # fmt: skip
    def post(self, request: Request, conversation_id: UUID) -> Response:
        conversation = _own_conversation(request, conversation_id)
        payload = self.InputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        header = request.headers.get("Idempotency-Key")
        key = self.IdempotencyKeySerializer(data={"key": header} if header is not None else {})
        if not key.is_valid():
            return Response(
                error_body(
                    "Invalid Idempotency-Key header.",
                    "invalid",
                    {"Idempotency-Key": key.errors["key"]},
                ),
                status=status.HTTP_400_BAD_REQUEST,
            )
        # The message rates count stored messages (ADR 0006): the service counts a message as
        # it stores it, so a retry of one already stored, or a post refused, counts nothing.
        message, run = services.message_post(
            conversation=conversation,
            author=authenticated_user(request),
            content=payload.validated_data["content"],
            idempotency_key=key.validated_data.get("key"),
            quota=message_quota(request, self),
        )
        # Where the reply will be, as a 202 names its status monitor (RFC 9110, 15.3.3); none
        # while staff answer the conversation.
        location = {"Location": reverse("run-detail", kwargs={"run_id": run.pk})} if run else {}
        return Response(
            {
                "message": MessageOutputSerializer(message).data,
                "run": (
                    RunOutputSerializer(run, context={"request": request}).data
                    if run is not None
                    else None
                ),
            },
            status=status.HTTP_202_ACCEPTED,
            headers=location,
        )


def _own_message(request: Request, conversation_id: UUID, message_id: int) -> Message:
    message = selectors.message_get(
        conversation=_own_conversation(request, conversation_id), message_id=message_id
    )
    if message is None:
        raise Http404
    return message


class ReplyFeedbackApi(APIView):
    """The customer's verdict on one of the assistant's replies: ``PUT`` gives or changes it,
    ``DELETE`` withdraws it. Staff read it beside the run that wrote the reply."""

    @extend_schema_serializer(component_name="ReplyFeedbackInput")
    class InputSerializer(StrictSerializer):
        read_only_names = ("created_at", "updated_at")

        rating = serializers.ChoiceField(choices=ReplyFeedback.Rating.choices)
        comment = serializers.CharField(
            required=False, allow_blank=True, max_length=MAX_FEEDBACK_COMMENT_LENGTH
        )

    @extend_schema(
        operation_id="reply_feedback_retrieve",
        responses={200: ReplyFeedbackOutputSerializer, **error_responses(401, 404, 429)},
    )
    def get(self, request: Request, conversation_id: UUID, message_id: int) -> Response:
        reply = _own_message(request, conversation_id, message_id)
        feedback = getattr(reply, "feedback", None)
        if feedback is None:
            raise Http404
        return Response(ReplyFeedbackOutputSerializer(feedback).data)

    @extend_schema(
        operation_id="reply_feedback_update",
        request=InputSerializer,
        responses={
            200: ReplyFeedbackOutputSerializer,
            201: ReplyFeedbackOutputSerializer,
            **error_responses(400, 401, 404, 429),
        },
    )
    def put(self, request: Request, conversation_id: UUID, message_id: int) -> Response:
        reply = _own_message(request, conversation_id, message_id)
        payload = self.InputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        feedback, created = services.reply_feedback_give(reply=reply, **payload.validated_data)
        return Response(
            ReplyFeedbackOutputSerializer(feedback).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )

    @extend_schema(
        operation_id="reply_feedback_destroy",
        responses={204: None, **error_responses(400, 401, 404, 429)},
    )
    def delete(self, request: Request, conversation_id: UUID, message_id: int) -> Response:
        reply = _own_message(request, conversation_id, message_id)
        if not services.reply_feedback_withdraw(reply=reply):
            raise Http404
        return Response(status=status.HTTP_204_NO_CONTENT)
