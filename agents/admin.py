import json
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from django import forms
from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from agents.graph.names import Route
from agents.models import AgentRun, DailySpend
from agents.selectors import agent_run_report
from beemanhoney.common.admin import ShopModelAdmin, admin_link, viewable_annotated
from conversations.models import Conversation, ReplyFeedback
from conversations.selectors import reply_feedback_of_run


class _FixedValuesFilter(admin.SimpleListFilter):
    """A filter over a field's known values. Django's default for a field without choices asks
    the database for its distinct values, a scan of every run on each page of the list."""

    values: tuple[str, ...]

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(value, value) for value in self.values]

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        # Only a value the filter offers: another came from a hand-made URL (a NUL in one was a
        # DataError), and the list is shown unfiltered.
        value = self.value()
        return queryset.filter(**{self.parameter_name: value}) if value in self.values else queryset


class RouteFilter(_FixedValuesFilter):
    title = parameter_name = "route"
    values = tuple(Route)


class ProviderFilter(_FixedValuesFilter):
    title = parameter_name = "provider"
    values = ("openai", "offline")


class ReplyFeedbackFilter(_FixedValuesFilter):
    """Runs whose reply the customer rated so: the unhelpful ones are where to look first."""

    title = "customer's feedback"
    parameter_name = "replies__feedback__rating"
    values = tuple(ReplyFeedback.Rating)


class RunReportForm(forms.Form):
    days = forms.TypedChoiceField(
        choices=[(1, "the last 24 hours"), (7, "7 days"), (30, "30 days"), (90, "90 days")],
        coerce=int,
        initial=7,
        label="Runs of",
    )


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "-"


def _runs_list_url(**filters: str) -> str:
    return f"{reverse('admin:agents_agentrun_changelist')}?{urlencode(filters)}"


def _report_line(line: dict[str, Any], *, since: datetime) -> dict[str, Any]:
    """A line of ``agent_run_report`` as the report shows it: shares, whole milliseconds, and for a
    route's line (or all routes') links to its failed runs and those rated unhelpful, of the
    report's period (created ``since``)."""
    rated = line["helpful"] + line["unhelpful"]
    shown = {
        **line,
        "failed_share": _share(line["failed"], line["runs"]),
        "unhelpful_share": _share(line["unhelpful"], rated),
        "latency_p50_ms": round(line["latency_p50_ms"]) if line["latency_p50_ms"] else None,
        "latency_p95_ms": round(line["latency_p95_ms"]) if line["latency_p95_ms"] else None,
    }
    route = line.get("route", "")
    if route is None or route in RouteFilter.values:  # all routes, or one the list filters by
        of_route = {RouteFilter.parameter_name: route} if route else {}
        of_route["created_at__gte"] = since.isoformat()
        shown["failed_url"] = _runs_list_url(status__exact="failed", **of_route)
        shown["unhelpful_url"] = _runs_list_url(
            **{ReplyFeedbackFilter.parameter_name: "unhelpful"}, **of_route
        )
    return shown


def _laid_out(value: Any) -> str:
    """``value`` as indented JSON; a string holding JSON (a tool's answer) too, and any other
    string (a summary cut short, an exception's name) as it is."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    return json.dumps(value, indent=2, ensure_ascii=False)


@admin.register(AgentRun)
class AgentRunAdmin(ShopModelAdmin):
    """Read-only: a run is a record of what the assistant did. Its report (a link on the list)
    sums the runs of a period by route and by day."""

    change_list_template = "admin/agents/agentrun/change_list.html"

    list_display = [
        "id", "status", "route", "agent", "provider", "model_calls", "prompt_tokens",
        "completion_tokens", "cost_usd", "latency_ms", "created_at",
    ]  # fmt: skip
    list_filter = ["status", RouteFilter, ProviderFilter, ReplyFeedbackFilter]
    # Searched as ``get_search_results`` says; this only shows the search box.
    search_fields = ["id"]
    search_help_text = (
        "A run's id, its conversation's, its task's or request's id; other text is looked for"
        " in the runs' errors."
    )
    list_select_related = ["conversation"]
    # Only by what an index orders (a click on the cost column sorted every run), and no count
    # of every run beside a filtered list's.
    sortable_by = ["id", "created_at"]
    show_full_result_count = False
    readonly_fields = [
        "id", "conversation_link", "user_message", "status", "route", "agent", "node_sequence",
        "trace", "provider", "model_name", "prompt_tokens", "completion_tokens", "cost_usd",
        "model_calls", "latency_ms", "error", "silence", "celery_task_id", "request_id",
        "deliveries", "dispatched_at", "started_at", "finished_at", "created_at",
        "customer_feedback",
    ]  # fmt: skip
    exclude = ["tool_calls", "conversation"]  # the conversation is conversation_link

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[AgentRun], search_term: str
    ) -> tuple[QuerySet[AgentRun], bool]:
        """An id finds the run, its conversation's runs or the run of that task by their
        indexes; a request's id finds its run by its own, and other text the runs whose error
        holds it, among those with an error (their own index). Django's search cast every id to
        text to compare, reading every run."""
        term = search_term.strip()
        if not term:
            return queryset, False
        try:
            as_id = UUID(term)
        except ValueError:
            # Among the few runs with an error, which an index of their own holds.
            in_errors = ~Q(error="") & Q(error__icontains=term)
            return queryset.filter(Q(request_id=term) | in_errors), False
        found = Q(pk=as_id) | Q(conversation_id=as_id) | Q(celery_task_id=str(as_id))
        return queryset.filter(found | Q(request_id=term)), False

    def get_queryset(self, request: HttpRequest) -> QuerySet[AgentRun]:
        rows = super().get_queryset(request)
        return viewable_annotated(self, request, rows, conversations_viewable=Conversation)

    @admin.display(description="conversation")
    def conversation_link(self, run: AgentRun) -> str:
        allowed = getattr(run, "conversations_viewable", False)
        return admin_link(Conversation, run.conversation_id, allowed=allowed)

    @admin.display(description="customer's feedback")
    def customer_feedback(self, run: AgentRun) -> str:
        feedback = reply_feedback_of_run(run_id=run.pk)
        return "-" if feedback is None else str(feedback)

    @admin.display(description="tool calls")
    def trace(self, run: AgentRun) -> str:
        """A row a call: its node, tool, arguments and what it answered, each readable (a
        result is the tool's JSON, as text: shown laid out, not as one quoted string)."""
        if not run.tool_calls:
            return "-"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td><pre>{}</pre></td><td><pre>{}</pre></td></tr>",
            (
                (
                    step.get("node", ""),
                    f"{step.get('tool', '')} (refused)"
                    if step.get("refused")
                    else step.get("tool"),
                    _laid_out(step.get("args", {})),
                    _laid_out(step.get("result", "")),
                )
                for step in run.tool_calls
            ),
        )
        return format_html(
            "<table><tr><th>node</th><th>tool</th><th>arguments</th><th>result</th></tr>{}</table>",
            rows,
        )

    def get_urls(self) -> list[Any]:
        report = path(
            "report/", self.admin_site.admin_view(self.report_view), name="agents_agentrun_report"
        )
        return [report, *super().get_urls()]

    def report_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        form = RunReportForm(request.GET or {"days": 7})
        context = {
            **self.admin_site.each_context(request),
            "title": "Assistant report",
            "subpage": "Report",
            "opts": self.opts,
            "form": form,
        }
        if not form.is_valid():
            return TemplateResponse(
                request, "admin/agents/agentrun/report.html", context, status=400
            )
        since = timezone.now() - timedelta(days=form.cleaned_data["days"])
        for by in ("route", "day"):
            context[f"by_{by}"] = [
                _report_line(line, since=since) for line in agent_run_report(since=since, by=by)
            ]
        return TemplateResponse(request, "admin/agents/agentrun/report.html", context)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Only as part of deleting its conversation or customer (an erasure request), which
        # Django allows only if every cascaded row may be deleted: superusers may.
        return request.user.is_superuser

    # A run alone is never deleted: no delete button, action or page of its own.
    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        extra_context = {**(extra_context or {}), "show_delete": False}
        return super().change_view(request, object_id, form_url, extra_context)

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        raise PermissionDenied


@admin.register(DailySpend)
class DailySpendAdmin(ShopModelAdmin):
    """Read-only: what each day's model calls cost, which the daily budget reads
    (``DAILY_BUDGET_USD``). Kept when chats are deleted."""

    list_display = ["day", "cost_usd", "share_of_budget"]
    ordering = ["-day"]
    date_hierarchy = "day"

    @admin.display(description="share of the daily budget")
    def share_of_budget(self, spend: DailySpend) -> str:
        budget = settings.DAILY_BUDGET_USD
        return f"{spend.cost_usd / budget:.0%}" if budget else "-"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
