from django.db import migrations, models


class Migration(migrations.Migration):
    """Publisher and verifier keys may be ECDSA P-256 (a longer text form); a release may carry the
    publisher's OpenSSF model_signing signature."""

    dependencies = [
        ('registry', '0009_upstream_inputs'),
    ]

    operations = [
        migrations.AlterField(model_name='publisherkey', name='public_key', field=models.CharField(max_length=200)),
        migrations.AlterField(model_name='verifier', name='public_key', field=models.CharField(max_length=200)),
        migrations.AddField(model_name='release', name='model_signing', field=models.JSONField(blank=True, null=True)),
    ]
