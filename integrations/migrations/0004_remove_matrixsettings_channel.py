"""Every Matrix conversation lives in its number's channel now (0003 moved them)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("integrations", "0003_matrix_number_channels")]

    operations = [migrations.RemoveField(model_name="matrixsettings", name="channel")]
