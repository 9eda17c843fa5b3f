"""One module per paper: its method's config and update, over ``core``."""
