"""Tests of the Helm chart, its dashboard and its alert rules (static: no cluster, no helm needed)."""
