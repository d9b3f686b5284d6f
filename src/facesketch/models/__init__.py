"""Every model registers itself here on import, in this order (the order of tables and lists)."""

from facesketch.models import dense_ae, conv_ae, hybrid_ae, unet, fsnet, baselines  # noqa: F401,I001
