import secrets

from django.db import migrations, models


def give_private_namespaces_a_key(apps, schema_editor):
    """Private namespaces made before roles were blinded: their earlier role events stay in the
    log by name (a log forgets nothing); `manage.py sync_roles` (run by devsetup) logs their
    current roles blinded, and later changes are blinded."""
    Namespace = apps.get_model("registry", "Namespace")
    for ns in Namespace.objects.filter(private=True):
        if not ns.role_blinding_keys:
            ns.role_blinding_keys = [secrets.token_hex(32)]
            ns.save(update_fields=["role_blinding_keys"])


class Migration(migrations.Migration):
    dependencies = [("registry", "0012_blob_upload_tokens")]

    operations = [
        migrations.AddField(model_name="namespace", name="role_blinding_keys", field=models.JSONField(blank=True, default=list)),
        migrations.RunPython(give_private_namespaces_a_key, migrations.RunPython.noop),
    ]
