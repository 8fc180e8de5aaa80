"""proxy.web package."""
