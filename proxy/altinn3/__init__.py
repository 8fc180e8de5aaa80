"""Outbound HTTP to Altinn 3: the client (tokens, timeouts, retries, breaker) and the plan executor."""

from proxy.altinn3.breaker import BreakerPolicy, Breakers
from proxy.altinn3.client import Altinn3Client, RetryPolicy, Timeouts
from proxy.altinn3.executor import execute

__all__ = ["Altinn3Client", "BreakerPolicy", "Breakers", "RetryPolicy", "Timeouts", "execute"]
