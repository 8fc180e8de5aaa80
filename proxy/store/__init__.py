"""proxy.store package."""
