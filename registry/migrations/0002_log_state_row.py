from django.db import migrations


def create_log_state(apps, schema_editor):
    apps.get_model("registry", "LogState").objects.get_or_create(pk=1, defaults={"size": 0})


class Migration(migrations.Migration):
    dependencies = [("registry", "0001_initial")]
    operations = [migrations.RunPython(create_log_state, migrations.RunPython.noop)]
