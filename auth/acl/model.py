"""Kafka's ACL vocabulary: the enums (with Kafka's wire codes), bindings and binding filters.

The codes are the ones Kafka puts on the wire (CreateAcls, DescribeAcls, ...) and uses for the
authorized-operations bitfields, so nothing here needs translating at the protocol edge.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from keystream.auth.principal import Principal

CLUSTER_NAME = "kafka-cluster"
WILDCARD_RESOURCE = "*"
WILDCARD_PRINCIPAL = "User:*"
WILDCARD_HOST = "*"


class _Coded(IntEnum):
    @classmethod
    def of(cls, code: int):
        """The member for a wire code; codes a newer client may send map to UNKNOWN, as in Kafka."""
        try:
            return cls(code)
        except ValueError:
            return cls(0)


class ResourceType(_Coded):
    UNKNOWN = 0
    ANY = 1
    TOPIC = 2
    GROUP = 3
    CLUSTER = 4
    TRANSACTIONAL_ID = 5
    DELEGATION_TOKEN = 6
    USER = 7


class PatternType(_Coded):
    UNKNOWN = 0
    ANY = 1
    MATCH = 2
    LITERAL = 3
    PREFIXED = 4


class Operation(_Coded):
    UNKNOWN = 0
    ANY = 1
    ALL = 2
    READ = 3
    WRITE = 4
    CREATE = 5
    DELETE = 6
    ALTER = 7
    DESCRIBE = 8
    CLUSTER_ACTION = 9
    DESCRIBE_CONFIGS = 10
    ALTER_CONFIGS = 11
    IDEMPOTENT_WRITE = 12
    CREATE_TOKENS = 13
    DESCRIBE_TOKENS = 14


class Permission(_Coded):
    UNKNOWN = 0
    ANY = 1
    DENY = 2
    ALLOW = 3


# Kafka's AclEntry.supportedOperations: what authorized-operations bitfields are computed over.
SUPPORTED_OPERATIONS: dict[ResourceType, tuple[Operation, ...]] = {
    ResourceType.TOPIC: (Operation.READ, Operation.WRITE, Operation.CREATE, Operation.DESCRIBE, Operation.DELETE,
                         Operation.ALTER, Operation.DESCRIBE_CONFIGS, Operation.ALTER_CONFIGS),
    ResourceType.GROUP: (Operation.READ, Operation.DESCRIBE, Operation.DELETE, Operation.DESCRIBE_CONFIGS,
                         Operation.ALTER_CONFIGS),
    ResourceType.CLUSTER: (Operation.CREATE, Operation.CLUSTER_ACTION, Operation.DESCRIBE_CONFIGS,
                           Operation.ALTER_CONFIGS, Operation.IDEMPOTENT_WRITE, Operation.ALTER, Operation.DESCRIBE),
    ResourceType.TRANSACTIONAL_ID: (Operation.DESCRIBE, Operation.WRITE),
    ResourceType.DELEGATION_TOKEN: (Operation.DESCRIBE,),
    ResourceType.USER: (Operation.CREATE_TOKENS, Operation.DESCRIBE_TOKENS),
}

# An ALLOW of the key also allows these (Kafka: read/write/delete/alter let you describe, ...).
IMPLIED_BY: dict[Operation, frozenset[Operation]] = {
    Operation.DESCRIBE: frozenset({Operation.DESCRIBE, Operation.READ, Operation.WRITE, Operation.DELETE,
                                   Operation.ALTER, Operation.ALL}),
    Operation.DESCRIBE_CONFIGS: frozenset({Operation.DESCRIBE_CONFIGS, Operation.ALTER_CONFIGS, Operation.ALL}),
}

CONCRETE_RESOURCE_TYPES = frozenset(SUPPORTED_OPERATIONS)
CONCRETE_OPERATIONS = frozenset(Operation) - {Operation.UNKNOWN, Operation.ANY}


class InvalidAcl(ValueError):
    """A binding or filter Kafka would refuse with INVALID_REQUEST; the text is the error message."""


def _coerce(obj) -> None:
    """Plain ints (wire codes) become the enums, so comparisons by identity hold everywhere."""
    for name, cls in (("resource_type", ResourceType), ("pattern_type", PatternType),
                      ("operation", Operation), ("permission", Permission)):
        value = getattr(obj, name)
        if not isinstance(value, cls):
            object.__setattr__(obj, name, cls.of(int(value)))

@dataclass(frozen=True, slots=True)
class AclBinding:
    """One ACL: a resource pattern plus an access control entry (principal, host, operation, permission)."""

    resource_type: ResourceType
    name: str
    pattern_type: PatternType
    principal: str
    host: str
    operation: Operation
    permission: Permission

    def __post_init__(self) -> None:
        _coerce(self)

    def validate(self) -> AclBinding:
        """Kafka's checks on a new ACL (AclControlManager.validateNewAcl and the broker's AclApis)."""
        if self.resource_type not in CONCRETE_RESOURCE_TYPES:
            raise InvalidAcl(f"Invalid resourceType {self.resource_type.name}")
        if self.pattern_type not in (PatternType.LITERAL, PatternType.PREFIXED):
            raise InvalidAcl(f"Invalid patternType {self.pattern_type.name}")
        if self.operation not in CONCRETE_OPERATIONS:
            raise InvalidAcl(f"Invalid operation {self.operation.name}")
        if self.permission not in (Permission.ALLOW, Permission.DENY):
            raise InvalidAcl(f"Invalid permission type {self.permission.name}")
        if not self.name:
            raise InvalidAcl("Invalid empty resource name")
        if self.resource_type is ResourceType.CLUSTER and self.name != CLUSTER_NAME:
            raise InvalidAcl(f"The only valid name for the CLUSTER resource is {CLUSTER_NAME}")
        parse_principal(self.principal)
        if self.host is None or self.host == "":
            raise InvalidAcl("Invalid empty host")
        return self


@dataclass(frozen=True, slots=True)
class AclBindingFilter:
    """Kafka's AclBindingFilter: ANY/MATCH enums and None name/principal/host match everything."""

    resource_type: ResourceType = ResourceType.ANY
    name: str | None = None
    pattern_type: PatternType = PatternType.ANY
    principal: str | None = None
    host: str | None = None
    operation: Operation = Operation.ANY
    permission: Permission = Permission.ANY

    def __post_init__(self) -> None:
        _coerce(self)

    def validate(self) -> AclBindingFilter:
        """Kafka refuses filters with UNKNOWN parts (AclControlManager.validateFilter)."""
        for part in (self.resource_type, self.pattern_type, self.operation, self.permission):
            if part == 0:
                raise InvalidAcl(f"Unknown {type(part).__name__} in filter")
        return self


ANY_FILTER = AclBindingFilter()



def parse_principal(text: str | None) -> Principal:
    """`Type:name`, as Kafka's SecurityUtils.parseKafkaPrincipal, as InvalidAcl when malformed."""
    if not text:
        raise InvalidAcl("Invalid empty principal: expected a string in format principalType:principalName")
    try:
        return Principal.parse(text)
    except ValueError:
        raise InvalidAcl(f"expected a string in format principalType:principalName but got {text}") from None
