"""proxy.soap package."""
