"""proxy.rest package."""
