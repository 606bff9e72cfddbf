"""The Portability HTTP API of the seed: GET /v1/Porting/Portability/PhoneNumber/{PhoneNumber}."""

import asyncio
from typing import Annotated

import asyncpg
from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from pydantic import BaseModel

from porting_runtime.failures import is_transient
from schemas import NumberType, PortabilityReason

from ..adapters.coverage_file import CoverageFile
from ..adapters.credentials import token_matches
from ..adapters.repository import PortabilityRepository
from ..domain.numbers import parse_e164
from ..domain.portability import ProvidedDetails
from ..service_layer.checks import check_numbers

PORTABILITY_PATH = "/v1/Porting/Portability/PhoneNumber/{PhoneNumber}"
ACCOUNT_SID = r"^AC[0-9a-fA-F]{32}$"
ADDRESS_SID = r"^AD[0-9a-fA-F]{32}$"
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


class ErrorBody(BaseModel):
    code: int
    message: str
    more_info: str
    status: int


def error(status: int, code: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    body = ErrorBody(code=code, message=message, more_info=f"https://www.twilio.com/docs/errors/{code}", status=status)
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def _unauthenticated() -> JSONResponse:
    return error(401, PortabilityReason.UNAUTHORIZED, "Authenticate with your account sid and auth token.",
                 headers={"WWW-Authenticate": 'Basic realm="Portability API"'})


# FastAPI resolves these annotations at runtime, so they stay real (no postponed annotations here).
basic = HTTPBasic(auto_error=False)


def add_portability_api(app: FastAPI, pool: asyncpg.Pool, coverage_file: CoverageFile) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid_parameters(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{e['loc'][-1]}: {e['msg']}" for e in exc.errors())
        if any(e["loc"][-1] == "TargetAccountSid" for e in exc.errors()):
            return error(403, PortabilityReason.UNAUTHORIZED, MESSAGES[PortabilityReason.UNAUTHORIZED])
        return error(400, 20001, f"Invalid parameter: {problems}")

    @app.get(
        PORTABILITY_PATH,
        response_model=PortabilityResponse,
        responses={400: {"model": ErrorBody}, 401: {"model": ErrorBody}, 403: {"model": ErrorBody},
                   503: {"model": ErrorBody}},
        summary="Check whether a phone number can be ported into an account",
    )
    async def fetch_portability(
        request: Request,
        phone_number: Annotated[str, Path(alias="PhoneNumber", description="E.164, e.g. +16175551212")],
        target_account_sid: Annotated[str | None, Query(alias="TargetAccountSid", pattern=ACCOUNT_SID)] = None,
        address_sid: Annotated[str | None, Query(alias="AddressSid", pattern=ADDRESS_SID)] = None,
        credentials: Annotated[HTTPBasicCredentials | None, Depends(basic)] = None,
    ) -> JSONResponse:
        try:
            async with pool.acquire() as connection:
                repository = PortabilityRepository(connection)
                if credentials is None:
                    return _unauthenticated()
                stored = await repository.token_hash(credentials.username)
                # scrypt costs ~30 ms of CPU: off the event loop, which the consumer and relay share.
                if stored is None or not await asyncio.to_thread(token_matches, credentials.password, stored):
                    return _unauthenticated()
                if parse_e164(phone_number) is None:
                    return error(400, PortabilityReason.INVALID_PHONE_NUMBER, MESSAGES[PortabilityReason.INVALID_PHONE_NUMBER])
                target = target_account_sid or credentials.username
                [result] = await check_numbers(
                    repository, coverage_file, [(phone_number, ProvidedDetails(address=address_sid is not None))],
                    target_account_sid=target, caller_account_sid=credentials.username,
                )
                await repository.record_checks([result], target_account_sid=target, requested_by=credentials.username)
        except Exception as failure:
            if not is_transient(failure):
                raise
            result = None
        if result is None or result.not_portable_reason_code is PortabilityReason.ERROR_INTERNAL_SERVER_ERROR:
            return error(503, PortabilityReason.ERROR_INTERNAL_SERVER_ERROR,
                         MESSAGES[PortabilityReason.ERROR_INTERNAL_SERVER_ERROR])
        if result.not_portable_reason_code is PortabilityReason.UNAUTHORIZED:
            return error(403, PortabilityReason.UNAUTHORIZED, MESSAGES[PortabilityReason.UNAUTHORIZED])
        body = PortabilityResponse(**result.model_dump(exclude={"requirements"}), url=str(request.url))
        return JSONResponse(body.model_dump(mode="json"))
