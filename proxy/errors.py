"""The one error tree of altinn-proxy.

Every failure a legacy client can see is one of these. Each class knows the Altinn 2 ``ErrorID`` a
legacy client keys on, whether the caller or the server is to blame (SOAP ``Client``/``Sender`` vs
``Server``/``Receiver``), and the HTTP status a legacy REST reply would carry. Exactly one place
per front turns them into replies and counts them: for SOAP, ``proxy.web.soap`` (with the fault
encoding of ``proxy.soap.encode``); for the legacy REST API, ``proxy.web.rest``.

Messages are written for an operator: they say what is wrong and what to fix. They never contain a
secret (password, token, assertion, key); code that builds a message from caller input must not
echo credentials.

::

    ProxyError
    ├── ClientError                    the request itself is wrong             (Client, 400)
    │   ├── MalformedRequest           XML/JSON not acceptable                 (400)
    │   │   └── HostileXml             DOCTYPE, entity, PI, limits exceeded    (400)
    │   ├── RequestTooLarge            body over the configured limit          (413)
    │   ├── RequestTimeout             the body did not arrive in time         (408)
    │   ├── UnsupportedMediaType       content type not SOAP/MTOM              (415)
    │   ├── SoapVersionMismatch        SOAP 1.1 on a 1.2 endpoint or back      (400)
    │   ├── UnknownOperation           path/SOAPAction/body match no operation (404)
    │   ├── OperationNotTranslated     known operation without A3 equivalent   (501)
    │   ├── InvalidReportee            malformed org/national id number        (400)
    │   ├── UnknownService             ServiceCode/Edition not routed          (404)
    │   └── InvalidField               a field value the operation refuses     (400)
    ├── AuthenticationFailed           wrong/unknown/locked legacy credentials (Client, 401)
    ├── AuthorizationDenied            caller may not act for that reportee    (Client, 403)
    ├── PersonSignatureRequired        needs a person, a system user is not enough (Client, 403)
    ├── NotFound                       no such item for this caller            (Client, 404)
    ├── Conflict                       state forbids the operation             (Client, 409)
    │   └── InProgress                 an identical submission is still running (409)
    ├── UpstreamError                  Altinn 3 refused the call               (Server, 502)
    │   └── UpstreamUnavailable        5xx, timeout, connection, open circuit  (Server, 503)
    ├── TokenError                     no usable Maskinporten/Altinn token     (Server, 502)
    │   ├── TokenRefused               Maskinporten answered an error (MP-nnn)
    │   └── TokenUnavailable           network failure/timeout towards Maskinporten (503)
    ├── StoreUnavailable               the state store cannot be reached       (Server, 503)
    ├── Overloaded                     serving limits.max_in_flight calls already (Server, 503)
    ├── MappingRuntimeError            a mapping's template/expression failed  (Server, 500)
    └── ConfigurationError             settings or mappings invalid (start-up; never a fault)

Anything else raised while serving a request is a bug: the front logs its stack trace and answers
a generic Server fault quoting the request id.

The ErrorIDs follow Altinn 2: ``989`` for missing/wrong system credentials, ``0`` for an end user
that may not act, ``5`` for a system that cannot be authorized for the reportee; ``30001`` is used
for request validation problems; service-specific codes (broker ``402xx``) are passed per raise.
"""

from __future__ import annotations

import copy
from typing import ClassVar


class ProxyError(Exception):
    """Base of every error the proxy raises on purpose.

    ``message`` is what the legacy client reads in ``AltinnErrorMessage`` (and the log line);
    ``extended`` goes to ``AltinnExtendedErrorMessage``.
    """

    error_id: ClassVar[int] = 0
    http_status: ClassVar[int] = 500
    client_fault: ClassVar[bool] = False
    #: A short stable name for metrics labels and logs.
    kind: ClassVar[str] = "proxy_error"

    def __init__(self, message: str, *, error_id: int | None = None, extended: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.extended = extended
        if error_id is not None:
            self.error_id = error_id  # type: ignore[misc]  # per-instance override of the class default

    def __str__(self) -> str:
        return self.message


class ClientError(ProxyError):
    """The request itself is wrong; repeating it unchanged will fail again."""

    error_id = 30001
    http_status = 400
    client_fault = True
    kind = "client_error"


class MalformedRequest(ClientError):
    """The body is not a well-formed message of the expected kind."""

    kind = "malformed_request"


class HostileXml(MalformedRequest):
    """The XML uses a forbidden construct (DOCTYPE, entity, PI) or exceeds a configured limit."""

    kind = "hostile_xml"


class RequestTooLarge(ClientError):
    """The body is larger than the configured limit."""

    http_status = 413
    kind = "request_too_large"


class RequestTimeout(ClientError):
    """The client sent its body too slowly (idle between chunks, or past the overall deadline)."""

    http_status = 408
    kind = "request_timeout"


class UnsupportedMediaType(ClientError):
    """The Content-Type is not one the endpoint speaks."""

    http_status = 415
    kind = "unsupported_media_type"


class SoapVersionMismatch(ClientError):
    """SOAP 1.1 was sent to a SOAP 1.2 endpoint, or the other way round."""

    kind = "soap_version_mismatch"


class UnknownOperation(ClientError):
    """Neither SOAPAction nor the body's root element names an operation of this endpoint."""

    http_status = 404
    kind = "unknown_operation"


class OperationNotTranslated(ClientError):
    """A known Altinn 2 operation for which this proxy has no Altinn 3 translation."""

    http_status = 501
    kind = "operation_not_translated"


class InvalidReportee(ClientError):
    """The reportee is not a valid organisation number or national identity number."""

    kind = "invalid_reportee"


class UnknownService(ClientError):
    """The ServiceCode/ServiceEdition is not routed to any Altinn 3 resource in the settings."""

    http_status = 404
    kind = "unknown_service"


class InvalidField(ClientError):
    """A field has a value the operation refuses (missing, wrong format, out of range)."""

    kind = "invalid_field"


class AuthenticationFailed(ProxyError):
    """Legacy credentials are missing, wrong, unknown or locked out; the text never says which."""

    error_id = 989
    http_status = 401
    client_fault = True
    kind = "authentication_failed"


class AuthorizationDenied(ProxyError):
    """The authenticated caller may not act for the requested reportee or operation."""

    error_id = 5
    http_status = 403
    client_fault = True
    kind = "authorization_denied"


class PersonSignatureRequired(ProxyError):
    """The operation legally needs a person's signature, which a system user cannot give."""

    error_id = 0
    http_status = 403
    client_fault = True
    kind = "person_signature_required"


class NotFound(ProxyError):
    """The item does not exist for this caller (another org's item is reported the same way)."""

    error_id = 30002
    http_status = 404
    client_fault = True
    kind = "not_found"


class Conflict(ProxyError):
    """The item's state forbids the operation."""

    error_id = 30003
    http_status = 409
    client_fault = True
    kind = "conflict"


class InProgress(Conflict):
    """An identical submission (same caller, operation and reference) is still being processed."""

    kind = "in_progress"


class UpstreamError(ProxyError):
    """Altinn 3 refused the call; ``status`` and ``problem`` keep what it said for the log."""

    error_id = 30010
    http_status = 502
    kind = "upstream_error"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error_code: str | None = None,
        error_id: int | None = None,
        extended: str | None = None,
    ) -> None:
        super().__init__(message, error_id=error_id, extended=extended)
        self.status = status
        self.error_code = error_code


class UpstreamUnavailable(UpstreamError):
    """Altinn 3 could not be reached, timed out, answered 5xx, or its circuit is open."""

    http_status = 503
    kind = "upstream_unavailable"


class TokenError(ProxyError):
    """No usable token could be obtained for the call."""

    error_id = 5
    http_status = 502
    kind = "token_error"


class TokenRefused(TokenError):
    """Maskinporten or the Altinn token exchange refused the grant (``code`` is e.g. ``MP-303``)."""

    kind = "token_refused"

    def __init__(self, message: str, *, code: str | None = None, extended: str | None = None) -> None:
        super().__init__(message, extended=extended)
        self.code = code


class TokenUnavailable(TokenError):
    """Maskinporten or the exchange could not be reached or timed out."""

    http_status = 503
    kind = "token_unavailable"


class StoreUnavailable(ProxyError):
    """The state store (SQLite file or PostgreSQL) cannot be used right now."""

    error_id = 30020
    http_status = 503
    kind = "store_unavailable"


class Overloaded(ProxyError):
    """The process already serves as many calls as it is set to; nothing of this one was done."""

    http_status = 503
    kind = "overloaded"


class MappingRuntimeError(ProxyError):
    """A mapping's template or expression failed on this request: a bug of the mapping, not the caller's.

    ``location`` is the mapping's ``file:line``, and the cause is chained: both are for the
    operator's log; the legacy client reads only that the translation failed.
    """

    http_status = 500
    kind = "mapping_error"

    def __init__(self, message: str, *, location: str | None = None) -> None:
        super().__init__(message)
        self.location = location


class ConfigurationError(ProxyError):
    """Settings or mappings are invalid. Raised at start-up or reload, never sent to a client.

    ``location`` names the file (and line or key) so the one-line message tells what to fix.
    """

    kind = "configuration_error"

    def __init__(self, message: str, *, location: str | None = None) -> None:
        super().__init__(f"{location}: {message}" if location else message)
        self.location = location


def upstream_cause(error: BaseException) -> UpstreamError | TokenError | None:
    """The Altinn 3 or token failure behind ``error`` (itself, or a fault rule's cause), else None."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, UpstreamError | TokenError):
            return seen
        seen = seen.__cause__
    return None


def for_legacy_caller(error: ProxyError, request_id: str) -> ProxyError:
    """``error`` as a legacy caller may see it: no client id, key id, URL, store address or upstream wording.

    Upstream, token and store messages are written for the operator (they name the Maskinporten
    client, its key, Altinn's own detail, the database). A legacy caller gets the fault table's
    message (or a plain one when no rule matched) and, as extended message, only what it can quote
    (status and errorCode), with the request id under which the operator's log line holds the rest.
    Every other error is returned as it is.
    """
    cause = upstream_cause(error)
    if cause is None:
        if not isinstance(error, StoreUnavailable):
            return error
        return _restated(
            error,
            "The proxy's state store is not available right now; retry later",
            f"the proxy's operator has the details under ErrorGuid {request_id}",
        )
    if isinstance(cause, TokenError):
        said = (
            f"token refused ({cause.code})" if isinstance(cause, TokenRefused) and cause.code else "no token"
        )
    else:
        said = f"HTTP {cause.status}" if cause.status is not None else "no answer"
        if cause.error_code:
            said += f", errorCode {cause.error_code}"
    message = error.message
    if error is cause:
        message = (
            "The proxy could not obtain an Altinn 3 token for this request"
            if isinstance(cause, TokenError)
            else f"Altinn 3 refused the request ({said})"
            if not isinstance(cause, UpstreamUnavailable)
            else "Altinn 3 is not available right now; retry later"
        )
    return _restated(
        error, message, f"Altinn 3: {said}; the proxy's operator has the details under ErrorGuid {request_id}"
    )


def _restated(error: ProxyError, message: str, extended: str) -> ProxyError:
    legacy = copy.copy(error)  # same class: same kind, ErrorID, fault code and HTTP status
    legacy.args, legacy.message, legacy.extended = (message,), message, extended
    return legacy
