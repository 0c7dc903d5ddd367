"""The OpenStack provider, configured from an OVH cloud project user (OVH's own examples do so).

The OVH provider itself is the default one: `ovh:endpoint` and the API keys come from the stack
config (`pulumi config set --secret ovh:applicationSecret ...`) or the OVH_* environment
variables (docs/infra.md). OpenStack credentials are never typed by a human: Pulumi creates a
project user with just the roles it needs and hands its generated password (a secret output) to
the OpenStack provider.
"""
from __future__ import annotations

import pulumi
import pulumi_openstack as openstack
import pulumi_ovh as ovh

from model.types import Stack

OVH_KEYSTONE = "https://auth.cloud.ovh.net/v3/"
# Least privilege for what infra/ manages with OpenStack: instances, networks, security groups,
# images (read) and volumes. No administrator role.
USER_ROLES = ("compute_operator", "network_operator", "network_security_operator",
              "image_operator", "volume_operator")


def openstack_provider(stack: Stack) -> tuple[ovh.cloudproject.User, openstack.Provider]:
    user = ovh.cloudproject.User("openstack-user", ovh.cloudproject.UserArgs(
        service_name=stack.ovh.project_id,
        description=f"pulumi {stack.environment} hosting (infra/providers.py)",
        role_names=list(USER_ROLES),
    ))
    provider = openstack.Provider("openstack", openstack.ProviderArgs(
        auth_url=OVH_KEYSTONE,
        domain_name="default",  # always "default" on OVHcloud
        tenant_id=stack.ovh.project_id,  # the Public Cloud project id is the OpenStack tenant
        user_name=user.username,
        password=user.password,  # secret output of the user resource
        region=stack.ovh.region,  # default; every resource also names its region explicitly
    ))
    return user, provider


def os_opts(provider: openstack.Provider, **kwargs: object) -> pulumi.ResourceOptions:
    """Options for an OpenStack resource: always the project-user provider, never a default one
    (a default OpenStack provider would silently read OS_* variables from the runner)."""
    return pulumi.ResourceOptions(provider=provider, **kwargs)  # type: ignore[arg-type]
