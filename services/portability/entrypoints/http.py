"""The Portability HTTP API of the seed: GET /v1/Porting/Portability/PhoneNumber/{PhoneNumber}."""

import asyncio
import base64
import re
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Annotated

from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from porting_runtime import UnitOfWork
from porting_runtime.failures import is_transient
from porting_runtime.http_errors import INVALID_PARAMETER, PublicError, public_error
from porting_runtime.logs import get_logger
from pydantic import BaseModel

from schemas import NumberType, PortabilityReason

from ..adapters.coverage_file import CoverageFile
from ..adapters.credentials import is_plausible_token, token_matches
from ..adapters.repository import PortabilityRepository, RecordedCheck, checks_written
from ..domain.numbers import parse_e164
from ..domain.portability import ProvidedDetails
from ..service_layer.checks import check_numbers

log = get_logger(__name__)

PORTABILITY_PATH = "/v1/Porting/Portability/PhoneNumber/{PhoneNumber}"
ACCOUNT_SID = r"^AC[0-9a-fA-F]{32}$"
ADDRESS_SID = r"^AD[0-9a-fA-F]{32}$"
# Full matches: `$` alone also matches before a final newline.
_ACCOUNT_SID, _ADDRESS_SID = re.compile(ACCOUNT_SID), re.compile(ADDRESS_SID)
MESSAGES = {
    PortabilityReason.INVALID_PHONE_NUMBER: "E.164 format is required for numbers in the portability API. "
                                            "Please resend the request with an e164 formatted phone number.",
    PortabilityReason.UNAUTHORIZED: "The account provided is not valid or you do not have access to the "
                                    "provided account in the query parameter target_account_sid.",
    PortabilityReason.ERROR_INTERNAL_SERVER_ERROR: "Internal error determining the portability of this number, "
                                                   "please try the request again.",
}


class PortabilityResponse(BaseModel):
    """The seed's response body, field for field."""

    phone_number: str
    account_sid: str | None
    portable: bool
    pin_and_account_number_required: bool
    not_portable_reason: str | None
    not_portable_reason_code: int | None
    number_type: NumberType
    country: str | None
    url: str


def _refused(reason: PortabilityReason, status: int) -> JSONResponse:
    return public_error(status, reason, MESSAGES[reason])


def _unauthenticated() -> JSONResponse:
    return public_error(401, PortabilityReason.UNAUTHORIZED, "Authenticate with your account sid and auth token.",
                        headers={"WWW-Authenticate": 'Basic realm="Portability API"'})


class BasicCredentials(HTTPBasic):
    """HTTP Basic credentials (RFC 7617: strict base64 of ASCII "sid:token"), or None for anything else.
    FastAPI's own raises for malformed ones, answered as {"detail": ...} before our code runs, and
    decodes leniently (characters outside base64 dropped, anything after the padding ignored)."""

    async def __call__(self, request: Request) -> HTTPBasicCredentials | None:  # type: ignore[override]
        scheme, _, encoded = (request.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("ascii")
        except (ValueError, UnicodeDecodeError):  # binascii.Error is a ValueError
            return None
        username, colon, password = decoded.partition(":")
        return HTTPBasicCredentials(username=username, password=password) if colon else None


def _plausible(credentials: HTTPBasicCredentials | None) -> bool:
    """Worth a database look-up and scrypt: an account sid (Postgres refuses a NUL in it) and a token
    as tokens are made (scrypt's HMAC pads the password with NULs, so "token\x00" would match "token")."""
    return (credentials is not None and _ACCOUNT_SID.fullmatch(credentials.username) is not None
            and is_plausible_token(credentials.password))


def _malformed(phone_number: str, target_account_sid: str | None, address_sid: str | None) -> JSONResponse | None:
    """The answer to a malformed request, in the rules' precedence (22102 first), or None."""
    if parse_e164(phone_number) is None:
        return _refused(PortabilityReason.INVALID_PHONE_NUMBER, 400)
    if target_account_sid is not None and not _ACCOUNT_SID.fullmatch(target_account_sid):
        return _refused(PortabilityReason.UNAUTHORIZED, 403)
    if address_sid is not None and not _ADDRESS_SID.fullmatch(address_sid):
        return public_error(400, INVALID_PARAMETER, "Invalid parameter: AddressSid must be AD followed by 32 hex digits.")
    return None


# FastAPI resolves these annotations at runtime, so they stay real (no postponed annotations here).
basic = BasicCredentials(auto_error=False)


def add_portability_api(app: FastAPI, unit_of_work: Callable[[], AbstractAsyncContextManager[UnitOfWork]],
                        coverage_file: CoverageFile) -> None:
    """`unit_of_work` opens the service's unit of work: the check it records commits as one."""

    @app.get(
        PORTABILITY_PATH,
        response_model=PortabilityResponse,
        responses={400: {"model": PublicError}, 401: {"model": PublicError}, 403: {"model": PublicError},
                   503: {"model": PublicError}},
        summary="Check whether a phone number can be ported into an account",
    )
    async def fetch_portability(
        request: Request,
        phone_number: Annotated[str, Path(alias="PhoneNumber", description="E.164, e.g. +16175551212")],
        # Checked here, not by FastAPI: a malformed target is the seed's 403 20003, in the public shape.
        target_account_sid: Annotated[str | None, Query(alias="TargetAccountSid",
                                                        json_schema_extra={"pattern": ACCOUNT_SID})] = None,
        address_sid: Annotated[str | None, Query(alias="AddressSid", json_schema_extra={"pattern": ADDRESS_SID})] = None,
        credentials: Annotated[HTTPBasicCredentials | None, Depends(basic)] = None,
    ) -> JSONResponse:
        if not _plausible(credentials):
            return _unauthenticated()
        assert credentials is not None
        try:
            async with unit_of_work() as unit:
                repository = PortabilityRepository(unit.connection)
                stored = await repository.token_hash(credentials.username)
                # scrypt costs ~30 ms of CPU: off the event loop, which the consumer and relay share.
                if stored is None or not await asyncio.to_thread(token_matches, credentials.password, stored):
                    return _unauthenticated()
                if (refusal := _malformed(phone_number, target_account_sid, address_sid)) is not None:
                    return refusal
                target = target_account_sid or credentials.username
                [result] = await check_numbers(
                    repository, coverage_file, [(phone_number, ProvidedDetails(address=address_sid is not None))],
                    target_account_sid=target, caller_account_sid=credentials.username,
                )
                unit.write(checks_written([RecordedCheck(result, target, requested_by=credentials.username)]))
        except Exception as failure:  # the seed's answer for any failure to decide: 22135, try again
            if is_transient(failure):
                log.warning("portability check unavailable", error=repr(failure))
            else:
                log.exception("portability check failed")
            return _refused(PortabilityReason.ERROR_INTERNAL_SERVER_ERROR, 503)
        if result.not_portable_reason_code is PortabilityReason.ERROR_INTERNAL_SERVER_ERROR:
            return _refused(PortabilityReason.ERROR_INTERNAL_SERVER_ERROR, 503)
        if result.not_portable_reason_code is PortabilityReason.UNAUTHORIZED:
            return _refused(PortabilityReason.UNAUTHORIZED, 403)
        body = PortabilityResponse(**result.model_dump(exclude={"requirements"}), url=str(request.url))
        return JSONResponse(body.model_dump(mode="json"))
