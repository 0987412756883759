from django.db import migrations, models


class Migration(migrations.Migration):
    """A release's quantization holds what a signed statement may name: up to 48 characters
    (32, then "(N)" with up to 10 digits), not 32 (a longer one was a database error, a 500)."""

    dependencies = [
        ('registry', '0010_ecdsa_keys_model_signing'),
    ]

    operations = [
        migrations.AlterField(
            model_name='release',
            name='quantization',
            field=models.CharField(max_length=48),
        ),
    ]
