"""proxy.identity package."""
