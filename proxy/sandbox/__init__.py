"""proxy.sandbox package."""
