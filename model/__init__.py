"""The single source of truth: sites, hosts, networks and policies of one environment.

Flow: Pulumi.<env>.yaml -> model.load_stack -> Stack -> (infra/ or lab/) -> inventory document.
"""
from model.errors import ConfigError, ConfigErrors
from model.parse import load_stack, parse_stack
from model.types import Site, Stack

__all__ = ["ConfigError", "ConfigErrors", "Site", "Stack", "load_stack", "parse_stack"]
