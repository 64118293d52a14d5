"""The cluster configuration: typed models and the validating loader."""

from failover.config.load import ConfigError, load_config, parse_config
from failover.config.model import (
    BgpSteering,
    CheckBase,
    Config,
    DnsSteering,
    Group,
    Policy,
    Service,
    Site,
    split_host_port,
)
from failover.config.problem import Problem

__all__ = [
    "BgpSteering",
    "CheckBase",
    "Config",
    "ConfigError",
    "DnsSteering",
    "Group",
    "Policy",
    "Problem",
    "Service",
    "Site",
    "load_config",
    "parse_config",
    "split_host_port",
]
