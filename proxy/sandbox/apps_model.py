"""State and rules of the fake Altinn 3 apps and Storage instances (see :mod:`proxy.sandbox.apps`).

What is modelled, and where Altinn's own source says so (app-lib-dotnet ``1363997d``, altinn-storage
``d9364e40``):

* An app's metadata lists its data types: allowed content types, ``maxSize`` (MB), ``maxCount``,
  ``minCount``, and for form data a class (``appLogic``) whose XML root element the app deserialises.
* Instance creation (``InstancesController.Post``) takes the instance template (JSON, or the first
  multipart part ``instance``) and data parts named by data type; a part the app refuses deletes the
  instance again. Storage keeps the template's ``dataValues`` (``CreateInstanceFromTemplate``).
* A data element beyond ``maxCount`` is 409 "Max Count Exceeded"; a body over ``maxSize`` or of a
  content type not allowed is 400 "File validation failed" with ``uploadValidationIssues``
  (``DataElementAccessChecker``, ``DataRestrictionValidation``).
* ``process/next`` from a data task runs validation; errors give 409 ProblemDetails "Validation
  failed for task" with ``validationIssues`` (``ProcessEngine.Next``, ``ProcessController``). Reaching
  the end event archives the instance and the app adds its PDF (``ref-data-as-pdf``).
* Storage's instance query pages newest-changed first by default (``desc:lastChanged``, size 100)
  with an opaque continuation token; ``excludeConfirmedBy`` hides instances the service owner has
  confirmed (``POST .../complete`` adds a ``completeConfirmations`` entry).

Data element bytes live in files under a directory, never in memory, so large attachments cost
nothing but disk.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lxml import etree

PDF_DATA_TYPE = "ref-data-as-pdf"


class AppProblem(Exception):
    """A refusal the fake answers as ProblemDetails (``extra`` members are added to the document)."""

    def __init__(self, status: int, title: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.extra = extra


@dataclass(frozen=True)
class FormRule:
    """A validation rule the fake app knows: element ``field`` of the form must hold a number >= 0."""

    field: str
    code: str
    description: str

    def issues(self, root: etree._Element, data_element_id: str) -> list[dict[str, Any]]:
        """Validation issues of this rule for one form (as ``ValidationIssueWithSource``)."""
        found = root.find("{*}" + self.field)
        if found is None or found.text is None:
            return []
        try:
            ok = float(found.text.strip()) >= 0
        except ValueError:
            ok = False
        if ok:
            return []
        return [
            {
                "severity": 1,
                "dataElementId": data_element_id,
                "field": f"{etree.QName(root).localname}.{self.field}",
                "code": self.code,
                "description": self.description,
                "source": "Custom",
                "noIncrementalUpdates": False,
                "customTextKey": self.code,
            }
        ]


@dataclass(frozen=True)
class DataTypeSpec:
    """One data type of an app's metadata."""

    id: str
    allowed_content_types: tuple[str, ...] = ()
    #: Megabytes, as the metadata says it (``maxSize``).
    max_size_mb: int | None = None
    max_count: int = 0
    min_count: int = 0
    #: For form data: the XML root element (local name) of the app's model class.
    root_element: str | None = None
    rules: tuple[FormRule, ...] = ()
    task_id: str | None = "Task_1"

    @property
    def is_form(self) -> bool:
        """Whether the app deserialises this data type as its form model."""
        return self.root_element is not None

    @property
    def max_bytes(self) -> int | None:
        """The size limit in bytes, or None."""
        return None if self.max_size_mb is None else self.max_size_mb * 1024 * 1024

    def metadata(self) -> dict[str, Any]:
        """The ``DataType`` document of application metadata."""
        document: dict[str, Any] = {
            "id": self.id,
            "allowedContentTypes": list(self.allowed_content_types) or None,
            "maxCount": self.max_count,
            "minCount": self.min_count,
            "taskId": self.task_id,
        }
        if self.max_size_mb is not None:
            document["maxSize"] = self.max_size_mb
        if self.is_form:
            document["appLogic"] = {"autoCreate": True, "classRef": f"Altinn.App.Models.{self.root_element}"}
        return {k: v for k, v in document.items() if v is not None}


@dataclass(frozen=True)
class ProcessTask:
    """A task of the app's BPMN process."""

    id: str
    task_type: str  # data | signing | confirmation | feedback


@dataclass(frozen=True)
class AppSpec:
    """One app of a service owner: identity, data types, process."""

    org: str
    app: str
    title: str
    data_types: tuple[DataTypeSpec, ...]
    process: tuple[ProcessTask, ...] = (ProcessTask("Task_1", "data"),)
    #: Whether the app generates a PDF of the form when the process ends.
    pdf: bool = True

    @property
    def app_id(self) -> str:
        """``org/app``."""
        return f"{self.org}/{self.app}"

    def data_type(self, name: str) -> DataTypeSpec | None:
        """The data type called ``name``, or None."""
        return next((dt for dt in self.data_types if dt.id == name), None)

    def metadata(self, created: str) -> dict[str, Any]:
        """The ``ApplicationMetadata`` document."""
        types = [dt.metadata() for dt in self.data_types]
        if self.pdf:
            types.append({"id": PDF_DATA_TYPE, "allowedContentTypes": ["application/pdf"], "maxCount": 0})
        return {
            "id": self.app_id,
            "org": self.org,
            "title": {"nb": self.title, "en": self.title},
            "dataTypes": types,
            "partyTypesAllowed": {
                "bankruptcyEstate": False,
                "organisation": True,
                "person": False,
                "subUnit": True,
            },
            "created": created,
            "createdBy": "sandbox",
            "altinnNugetVersion": "8.0.0.0",
        }


def iso(moment: float) -> str:
    """A Storage timestamp (UTC, 7 fractional digits, ``Z``)."""
    text = datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    return f"{text}0Z"


@dataclass
class DataElement:
    """A data element of an instance; its bytes are in a file named by its id."""

    id: uuid.UUID
    instance_guid: uuid.UUID
    data_type: str
    content_type: str
    filename: str | None
    size: int
    created: float
    created_by: str

    def document(self, instance: Instance) -> dict[str, Any]:
        """The ``DataElement`` document."""
        document: dict[str, Any] = {
            "id": str(self.id),
            "instanceGuid": str(self.instance_guid),
            "dataType": self.data_type,
            "contentType": self.content_type,
            "blobStoragePath": f"{instance.app.org}/{instance.app.app}/{self.instance_guid}/data/{self.id}",
            "size": self.size,
            "locked": instance.process_ended is not None,
            "isRead": True,
            "tags": [],
            "created": iso(self.created),
            "createdBy": self.created_by,
            "lastChanged": iso(self.created),
            "lastChangedBy": self.created_by,
            "fileScanResult": "NotApplicable",
        }
        if self.filename is not None:
            document["filename"] = self.filename
        return document


@dataclass
class Instance:
    """An app instance as Storage keeps it."""

    guid: uuid.UUID
    app: AppSpec
    party_id: int
    org_number: str
    created: float
    created_by: str
    data_values: dict[str, str]
    last_changed: float = 0.0
    #: Index into ``app.process`` of the current task; None once ended.
    task_index: int | None = 0
    process_started: float = 0.0
    task_started: float = 0.0
    process_ended: float | None = None
    data: list[DataElement] = field(default_factory=list)
    #: (service owner code, when) of each confirmed download.
    confirmations: list[tuple[str, float]] = field(default_factory=list)
    hard_deleted: bool = False
    #: A sequence number that orders instances changed at the same clock instant.
    order: int = 0

    @property
    def id(self) -> str:
        """Storage's instance id ``{partyId}/{guid}``."""
        return f"{self.party_id}/{self.guid}"

    @property
    def current_task(self) -> ProcessTask | None:
        """The task the process is in, or None when it has ended."""
        return None if self.task_index is None else self.app.process[self.task_index]

    def elements_of(self, data_type: str) -> list[DataElement]:
        """This instance's data elements of ``data_type``."""
        return [element for element in self.data if element.data_type == data_type]

    def process_state(self) -> dict[str, Any]:
        """The ``ProcessState`` document."""
        state: dict[str, Any] = {"started": iso(self.process_started), "startEvent": "StartEvent_1"}
        task = self.current_task
        if task is not None:
            state["currentTask"] = {
                "flow": self.task_index + 2 if self.task_index is not None else 2,
                "started": iso(self.task_started),
                "elementId": task.id,
                "name": task.id,
                "altinnTaskType": task.task_type,
                "flowType": "CompleteCurrentMoveToNext",
            }
        if self.process_ended is not None:
            state["ended"] = iso(self.process_ended)
            state["endEvent"] = "EndEvent_1"
        return state

    def document(self) -> dict[str, Any]:
        """The ``Instance`` document, as both the app and Storage answer it."""
        archived = self.process_ended is not None
        document: dict[str, Any] = {
            "id": self.id,
            "instanceOwner": {"partyId": str(self.party_id), "organisationNumber": self.org_number},
            "appId": self.app.app_id,
            "org": self.app.org,
            "selfLinks": {
                "apps": f"https://{self.app.org}.apps.altinn.no/{self.app.app_id}/instances/{self.id}",
                "platform": f"https://platform.altinn.no/storage/api/v1/instances/{self.id}",
            },
            "process": self.process_state(),
            "status": {
                "isArchived": archived,
                "isSoftDeleted": False,
                "isHardDeleted": self.hard_deleted,
                "readStatus": "Read",
            },
            "completeConfirmations": [
                {"stakeholderId": who, "confirmedOn": iso(when)} for who, when in self.confirmations
            ],
            "data": [element.document(self) for element in self.data],
            "created": iso(self.created),
            "createdBy": self.created_by,
            "lastChanged": iso(self.last_changed),
            "lastChangedBy": self.created_by,
        }
        if archived:
            document["status"]["archived"] = iso(self.process_ended or 0.0)
        if self.data_values:
            document["dataValues"] = dict(self.data_values)
        return document

    def app_document(self) -> dict[str, Any]:
        """The app's ``InstanceResponse``: Storage's instance with the owner's party, every member
        present (``null`` where unset) and the read status as a number."""
        document = self.document()
        document["instanceOwner"] = {
            "partyId": str(self.party_id),
            "personNumber": None,
            "organisationNumber": self.org_number,
            "username": None,
            "party": {
                "partyId": self.party_id,
                "partyUuid": str(uuid.uuid5(uuid.NAMESPACE_OID, f"party:{self.party_id}")),
                "partyTypeName": 2,
                "ssn": None,
                "orgNumber": self.org_number,
                "unitType": "AS",
                "name": f"Organisation {self.org_number}",
                "isDeleted": False,
            },
        }
        document["status"]["readStatus"] = 1
        document.setdefault("dataValues", None)
        document.update(dueBefore=None, visibleAfter=iso(self.created), presentationTexts=None)
        return document


def parse_form(raw: bytes, spec: DataTypeSpec) -> etree._Element:
    """The form's root element, or the 400 the app answers when it cannot deserialise the model.

    The parser resolves nothing and loads nothing (no DTD, no entities, no network).
    """
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        root = etree.fromstring(raw, parser)
    except etree.XMLSyntaxError as error:
        raise AppProblem(
            400, "Bad Request", f"Failed to deserialize {spec.id}: the XML is not well formed ({error})"
        ) from None
    docinfo = root.getroottree().docinfo
    if docinfo.internalDTD is not None or docinfo.externalDTD is not None or docinfo.system_url:
        raise AppProblem(400, "Bad Request", f"Failed to deserialize {spec.id}: DTDs are not allowed")
    local = etree.QName(root).localname
    if local != spec.root_element:
        raise AppProblem(
            400,
            "Bad Request",
            f"Failed to deserialize {spec.id}: <{local} xmlns=''> was not expected, "
            f"the model's root element is {spec.root_element}",
        )
    return root


def upload_problems(spec: DataTypeSpec, content_type: str, filename: str | None, size: int) -> list[str]:
    """Why app-lib's ``DataRestrictionValidation`` refuses a binary upload (empty when it accepts it)."""
    base = "Invalid data provided. Error:"
    limit = spec.max_bytes
    if limit is not None and size > limit:
        return [f"{base} Binary attachment exceeds limit of {limit}"]
    if not filename:
        return [f"{base} The Content-Disposition header must contain a valid filename"]
    if "." not in filename:
        return [
            f"{base} Invalid format for filename: {filename}. Filename is expected to end with '.{{filetype}}'."
        ]
    allowed = spec.allowed_content_types
    if (
        allowed
        and content_type.lower() not in {t.lower() for t in allowed}
        and "application/octet-stream" not in allowed
    ):
        return [
            f"{base} Invalid content type: {content_type}. Please try another file. "
            f"Permitted content types include: {', '.join(allowed)}"
        ]
    return []


def upload_issue(description: str) -> dict[str, Any]:
    """One ``uploadValidationIssues`` entry."""
    return {
        "severity": 1,
        "code": "DataElementValidation",
        "description": description,
        "source": "DataRestrictionValidation",
        "noIncrementalUpdates": False,
    }


def count_problem(spec: DataTypeSpec, existing: int) -> AppProblem | None:
    """App-lib's 409 for one more element than ``maxCount`` allows."""
    if spec.max_count > 0 and existing >= spec.max_count:
        return AppProblem(
            409,
            "Max Count Exceeded",
            f"Cannot create more than {spec.max_count} data elements of type {spec.id}",
        )
    return None


def validation_issues(instance: Instance, forms: Mapping[uuid.UUID, etree._Element]) -> list[dict[str, Any]]:
    """Every validation error of the current task: missing required data and the forms' rules."""
    issues: list[dict[str, Any]] = []
    for spec in instance.app.data_types:
        count = len(instance.elements_of(spec.id))
        if count < spec.min_count:
            issues.append(
                {
                    "severity": 1,
                    "field": spec.id,
                    "code": "TooFewDataElementsOfType",
                    "description": f"TooFewDataElementsOfType {spec.id}",
                    "source": "Required",
                    "noIncrementalUpdates": False,
                }
            )
    for element in instance.data:
        form_spec = instance.app.data_type(element.data_type)
        root = forms.get(element.id)
        if form_spec is None or root is None:
            continue
        for rule in form_spec.rules:
            issues.extend(rule.issues(root, str(element.id)))
    return issues


@dataclass(frozen=True)
class Query:
    """A Storage instance query (the parameters the fake supports)."""

    org: str | None
    app_id: str | None
    party_id: int | None
    is_complete: bool | None
    exclude_confirmed_by: str | None
    ascending: bool
    size: int
    after: tuple[float, int] | None


def select(instances: Sequence[Instance], query: Query) -> tuple[list[Instance], tuple[float, int] | None]:
    """One page of matching instances, ordered by (lastChanged, order), and where the next starts."""
    matches = [i for i in instances if _matches(i, query)]
    matches.sort(key=lambda i: (i.last_changed, i.order), reverse=not query.ascending)
    if query.after is not None:
        key = query.after
        if query.ascending:
            matches = [i for i in matches if (i.last_changed, i.order) > key]
        else:
            matches = [i for i in matches if (i.last_changed, i.order) < key]
    page = matches[: query.size]
    # As Storage does: a full page carries a token (the next page may be empty), a short one none.
    following = (page[-1].last_changed, page[-1].order) if len(page) == query.size else None
    return page, following


def _matches(instance: Instance, query: Query) -> bool:
    if instance.hard_deleted:
        return False
    if query.org is not None and instance.app.org != query.org:
        return False
    if query.app_id is not None and instance.app.app_id != query.app_id:
        return False
    if query.party_id is not None and instance.party_id != query.party_id:
        return False
    if query.is_complete is not None and (instance.process_ended is not None) != query.is_complete:
        return False
    confirmed_by = (query.exclude_confirmed_by or "").lower()
    return not confirmed_by or all(who.lower() != confirmed_by for who, _ in instance.confirmations)
