"""Broker (formidling) helpers that are neither mapping nor transport: the streaming manifest shim."""

from proxy.broker.manifest import (
    BrokerManifest,
    ManifestInjector,
    ZipRewriteError,
    shim_download,
    with_manifest,
)

__all__ = ["BrokerManifest", "ManifestInjector", "ZipRewriteError", "shim_download", "with_manifest"]
