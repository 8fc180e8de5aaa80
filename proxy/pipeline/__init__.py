"""The request pipeline: the seam between the fronts and the executor.

A front hands over an authenticated legacy request; :class:`Pipeline` starts its plan on the active
mapping set (:class:`MappingRegistry`, which also watches the mapping directory) and lets the
executor answer the plan's steps with Altinn 3 and the store. The SOAP front reaches it through
:class:`MappedOperations`; ``explain`` builds the same routing and authorization from the settings.
"""

from proxy.pipeline.operations import MappedOperations, Pipeline, authorize_reportee, routing_table
from proxy.pipeline.registry import MappingRegistry

__all__ = ["MappedOperations", "MappingRegistry", "Pipeline", "authorize_reportee", "routing_table"]
