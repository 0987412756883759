from django.conf import settings
from django.db import migrations, models


def copy_first_uploader(apps, schema_editor):
    Blob = apps.get_model("registry", "Blob")
    Through = Blob.uploaders.through
    Through.objects.bulk_create(
        [Through(blob_id=digest, user_id=user_id) for digest, user_id in Blob.objects.filter(uploaded_by__isnull=False).values_list("digest", "uploaded_by_id")],
        ignore_conflicts=True,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("registry", "0002_log_state_row"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]
    operations = [
        migrations.AddField(
            model_name="blob",
            name="uploaders",
            field=models.ManyToManyField(blank=True, related_name="uploaded_blobs", to=settings.AUTH_USER_MODEL),
        ),
        migrations.RunPython(copy_first_uploader, migrations.RunPython.noop),
    ]
