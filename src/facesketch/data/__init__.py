"""Paired face photo / sketch data: discovery, validation, splits, loading, augmentation."""
