"""proxy.maskinporten package."""
