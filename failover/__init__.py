"""failover: keeps a service reachable when one of its two data centres fails."""
