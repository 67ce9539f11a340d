"""One module per dataset format; each registers its :class:`~skelrobust.data.DatasetSpec` on import."""
