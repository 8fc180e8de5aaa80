"""proxy.onboarding package."""
