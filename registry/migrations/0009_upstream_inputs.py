from django.db import migrations, models


class Migration(migrations.Migration):
    """A conversion's upstream files and a split GGUF's further parts are inputs of their release, several with one role."""

    dependencies = [
        ('registry', '0008_release_inputs'),
    ]

    operations = [
        migrations.RemoveConstraint(model_name='releaseinput', name='uniq_release_input_role'),
        migrations.AlterField(
            model_name='releaseinput',
            name='role',
            field=models.CharField(choices=[('imatrix', 'importance matrix'), ('calibration', 'calibration text of the importance matrix'),
                                            ('upstream', 'upstream checkpoint file of a conversion'),
                                            ('part', 'further part of a split GGUF')], max_length=32),
        ),
        migrations.AddConstraint(
            model_name='releaseinput',
            constraint=models.UniqueConstraint(fields=('release', 'role', 'name'), name='uniq_release_input_role_name'),
        ),
    ]
