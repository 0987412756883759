import secrets

from django.db import migrations, models


def give_private_namespaces_a_key(apps, schema_editor):
    """Private namespaces made before roles were blinded: their earlier role events stay in the
    log by name (a log forgets nothing); `manage.py sync_roles` (run by devsetup) logs their
    current roles blinded, and later changes are blinded."""
    Namespace = apps.get_model("registry", "Namespace")
    for ns in Namespace.objects.filter(private=True, role_blinding_key=""):
        ns.role_blinding_key = secrets.token_hex(32)
        ns.save(update_fields=["role_blinding_key"])


class Migration(migrations.Migration):
    dependencies = [("registry", "0012_blob_upload_tokens")]

    operations = [
        migrations.AddField(model_name="namespace", name="role_blinding_key",
                            field=models.CharField(blank=True, default="", max_length=64)),
        migrations.RunPython(give_private_namespaces_a_key, migrations.RunPython.noop),
    ]
