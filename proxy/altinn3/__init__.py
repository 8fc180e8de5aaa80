"""proxy.altinn3 package."""
