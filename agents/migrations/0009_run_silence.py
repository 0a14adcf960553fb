from django.db import migrations, models

# The notes runs were silenced with, until the reason had a field of its own.
SILENCE_NOTES = {
    "with_staff": "The conversation is with staff; the assistant stays silent.",
    "closed": "The conversation was closed; the assistant stays silent.",
    "answered_by_staff": "Staff answered the message while the assistant wrote; it stays silent.",
}


def silence_from_notes(apps, schema_editor):
    AgentRun = apps.get_model("agents", "AgentRun")
    for silence, note in SILENCE_NOTES.items():
        AgentRun.objects.filter(status="cancelled", error__startswith=note).update(silence=silence)


class Migration(migrations.Migration):
    dependencies = [
        ("agents", "0008_daily_spend"),
    ]

    operations = [
        migrations.AddField(
            model_name="agentrun",
            name="silence",
            field=models.CharField(
                blank=True,
                choices=[
                    ("with_staff", "With Staff"),
                    ("closed", "Closed"),
                    ("answered_by_staff", "Answered By Staff"),
                ],
                max_length=20,
            ),
        ),
        migrations.RunPython(silence_from_notes, migrations.RunPython.noop),
    ]
