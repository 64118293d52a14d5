"""A real two-site network on one host (network namespaces, BIRD, BIND) for tests and demos."""

from failover.lab.lab import COMPONENTS, EXAMPLE_CONFIG, Lab, LabStatus
from failover.lab.netns import LabError
from failover.lab.topology import LOCATIONS, NAME_SERVERS, NAMESPACES, SERVICE_ADDRESS, UPLINKS

__all__ = [
    "COMPONENTS",
    "EXAMPLE_CONFIG",
    "LOCATIONS",
    "NAMESPACES",
    "NAME_SERVERS",
    "SERVICE_ADDRESS",
    "UPLINKS",
    "Lab",
    "LabError",
    "LabStatus",
]
