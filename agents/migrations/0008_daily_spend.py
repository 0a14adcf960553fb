from decimal import Decimal

from django.db import migrations, models
from django.db.models import Sum
from django.db.models.functions import TruncDate


def daily_spend_from_runs(apps, schema_editor):
    """The days' spend so far, from the runs still stored (by the day each was created)."""
    AgentRun = apps.get_model("agents", "AgentRun")
    DailySpend = apps.get_model("agents", "DailySpend")
    days = (
        AgentRun.objects.filter(cost_usd__gt=0)
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(cost_usd=Sum("cost_usd"))
        .order_by()
    )
    DailySpend.objects.bulk_create(
        DailySpend(day=row["day"], cost_usd=row["cost_usd"]) for row in days.iterator()
    )


class Migration(migrations.Migration):
    dependencies = [
        ("agents", "0007_run_cancelled_mid_turn"),
    ]

    operations = [
        migrations.CreateModel(
            name="DailySpend",
            fields=[
                ("day", models.DateField(primary_key=True, serialize=False)),
                (
                    "cost_usd",
                    models.DecimalField(decimal_places=6, default=Decimal("0"), max_digits=14),
                ),
            ],
        ),
        migrations.RunPython(daily_spend_from_runs, migrations.RunPython.noop),
    ]
