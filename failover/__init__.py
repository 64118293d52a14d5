"""failover: keeps a service reachable when one of its two data centres fails."""

__version__ = "0.1.0"
