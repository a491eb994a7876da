"""Confluent Schema Registry's errors: HTTP status, `error_code` and message text.

Clients branch on `error_code` (e.g. 40401 vs 40403), so codes and texts follow Confluent's
`Errors` class; the REST layer turns a RegistryError into `{"error_code": .., "message": ..}`.
"""

from __future__ import annotations


class RegistryError(Exception):
    """A failed registry operation; `body()` is the JSON the client receives."""

    def __init__(self, status: int, error_code: int, message: str):
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message

    def body(self) -> dict[str, object]:
        return {"error_code": self.error_code, "message": self.message}


def subject_not_found(subject: str) -> RegistryError:
    return RegistryError(404, 40401, f"Subject '{subject}' not found.")


def version_not_found(version: object) -> RegistryError:
    return RegistryError(404, 40402, f"Version {version} not found.")


def schema_not_found(schema_id: int | None = None) -> RegistryError:
    return RegistryError(404, 40403, "Schema not found" if schema_id is None else f"Schema {schema_id} not found")


def subject_soft_deleted(subject: str) -> RegistryError:
    return RegistryError(404, 40404, f"Subject '{subject}' was soft deleted.Set permanent=true to delete permanently")


def subject_not_soft_deleted(subject: str) -> RegistryError:
    return RegistryError(404, 40405, f"Subject '{subject}' was not deleted first before being permanently deleted")


def version_soft_deleted(subject: str, version: object) -> RegistryError:
    return RegistryError(404, 40406, f"Subject '{subject}' Version {version} was soft deleted."
                                     "Set permanent=true to delete permanently")


def version_not_soft_deleted(subject: str, version: object) -> RegistryError:
    return RegistryError(404, 40407, f"Subject '{subject}' Version {version} was not deleted first before"
                                     " being permanently deleted")


def subject_level_compat_not_configured(subject: str) -> RegistryError:
    return RegistryError(404, 40408, f"Subject '{subject}' does not have subject-level compatibility configured")


def subject_level_mode_not_configured(subject: str) -> RegistryError:
    return RegistryError(404, 40409, f"Subject '{subject}' does not have subject-level mode configured")


def invalid_schema(message: str) -> RegistryError:
    return RegistryError(422, 42201, message)


def invalid_version(version: object) -> RegistryError:
    return RegistryError(422, 42202, f"The specified version '{version}' is not a valid version id. "
                                     'Allowed values are between [1, 2^31-1] and the string "latest"')


def invalid_compatibility_level() -> RegistryError:
    return RegistryError(422, 42203, "Invalid compatibility level. Valid values are none, backward, forward, full,"
                                     " backward_transitive, forward_transitive, and full_transitive")


def invalid_mode() -> RegistryError:
    return RegistryError(422, 42204, "Invalid mode. Valid values are READWRITE, READONLY and IMPORT.")


def operation_not_permitted(message: str) -> RegistryError:
    return RegistryError(422, 42205, message)


def reference_exists(subject: str, version: int) -> RegistryError:
    return RegistryError(422, 42206, f"One or more references exist to the schema {{subject={subject},version={version}}}.")


def invalid_subject(subject: str) -> RegistryError:
    # ascii(): the name may hold control characters; keep them escaped in the message.
    return RegistryError(422, 42208, f"The specified subject {ascii(subject)} is not a valid.")


def incompatible(message: str) -> RegistryError:
    return RegistryError(409, 40901, message)


def store_error(message: str) -> RegistryError:
    return RegistryError(500, 50001, message)


def timeout(message: str) -> RegistryError:
    return RegistryError(500, 50002, message)


def forward(message: str) -> RegistryError:
    return RegistryError(500, 50003, message)


def unauthorized(message: str = "Unauthorized") -> RegistryError:
    return RegistryError(401, 401, message)


def forbidden(message: str = "Forbidden") -> RegistryError:
    return RegistryError(403, 40301, message)
