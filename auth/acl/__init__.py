"""Kafka ACL authorization: the model, matching, the durable store and the Authorizer."""

from keystream.auth.acl.authorizer import Authorizer, parse_super_users
from keystream.auth.acl.model import (
    ANY_FILTER,
    CLUSTER_NAME,
    SUPPORTED_OPERATIONS,
    WILDCARD_HOST,
    WILDCARD_PRINCIPAL,
    WILDCARD_RESOURCE,
    AclBinding,
    AclBindingFilter,
    InvalidAcl,
    Operation,
    PatternType,
    Permission,
    ResourceType,
)

__all__ = [
    "ANY_FILTER", "CLUSTER_NAME", "SUPPORTED_OPERATIONS", "WILDCARD_HOST", "WILDCARD_PRINCIPAL",
    "WILDCARD_RESOURCE", "AclBinding", "AclBindingFilter", "Authorizer", "InvalidAcl", "Operation",
    "PatternType", "Permission", "ResourceType", "parse_super_users",
]
