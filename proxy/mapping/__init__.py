"""proxy.mapping package."""
