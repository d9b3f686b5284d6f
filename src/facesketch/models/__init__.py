"""Every model registers itself here on import."""

from facesketch.models import baselines, conv_ae, dense_ae, hybrid_ae, unet  # noqa: F401
