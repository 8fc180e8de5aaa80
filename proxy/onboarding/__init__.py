"""Onboarding customers: the system register entry, system-user requests, per-organisation readiness."""
