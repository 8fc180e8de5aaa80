"""proxy.observability package."""
