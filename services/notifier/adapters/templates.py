"""E-mail from the template files ops edit: plain text and HTML in one message.

A template that names something the context does not have fails loudly (StrictUndefined)
instead of sending a message with a hole in it; the unit tests render every template.
"""

from __future__ import annotations

import binascii
import email.utils
import functools
import re
import secrets
import time
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from datetime import datetime
from email.header import Header
from pathlib import Path
from typing import Any

import yaml
from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template, select_autoescape

from porting_runtime.record_text import DIRECTION_CONTROLS

from ..domain.reasons import FixAdvice

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
RECHECK_SECONDS = 1.0


class TemplateProblem(ValueError):
    """A template file that cannot produce a message: missing, no subject line, a bad name."""


class UnsendableRecipient(ValueError):
    """A recipient that is not one plain address (addr-spec): no message can go to it as given."""


# One plain address: one "@", no whitespace or control character, none of the characters that make
# an address list, a comment, a group, a display name or a route (",;:<>()[]\\" and quotes). The
# event schema only asks for one "@" and no whitespace: "evil,victim@example.com" passes it, and
# aiosmtplib's envelope parse would send that to <evil>, the To header naming two addresses.
_PLAIN_ADDRESS = re.compile(r"[^@\s,;:<>()\[\]\\\"\x00-\x1f\x7f]+@[^@\s,;:<>()\[\]\\\"\x00-\x1f\x7f]+")
# A subject is one line of text: whitespace of any kind (CR, LF, U+2028, U+0085, ...) and control
# characters (NUL, ESC, DEL, C1) become a space.
_NOT_IN_SUBJECT = re.compile(r"[\s\x00-\x1f\x7f-\x9f]+")


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


# Unicode's direction embeddings, overrides and isolates. In text another carrier wrote (a
# rejection reason), U+202E made "call 888-555-9900 to the original" display reversed in the
# customer's e-mail ("Trojan Source"). Every value a template shows goes out without them; the
# text keeps its logical order, which readers display correctly without them.
_DIRECTION_CONTROLS = re.compile(f"[{DIRECTION_CONTROLS}]")


def _without_direction_controls(value: Any) -> Any:
    return _DIRECTION_CONTROLS.sub("", value) if isinstance(value, str) else value


class _MailEnvironment(Environment):
    """Jinja2's environment, each template's globals a plain dict instead of a ChainMap over the
    environment's: every render copies them into its context, and a ChainMap reads its keys in
    Python (~2.5% of the notifier's CPU under make bench). Nothing here changes globals once a
    template is loaded (Jinja2 asks for that anyway: make_globals)."""

    def make_globals(self, d: MutableMapping[str, Any] | None) -> MutableMapping[str, Any]:
        return {**self.globals, **(d or {})}


class EmailTemplates:
    def __init__(self, directory: Path = TEMPLATES) -> None:
        self.directory = directory / "email"
        self.environment = _MailEnvironment(
            loader=FileSystemLoader(self.directory),
            undefined=StrictUndefined,
            # HTML is escaped (a customer's name cannot inject markup); plain text is not.
            autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            # Jinja2 would stat a template's file (and its layout's and includes') on every use:
            # four and more stat calls per message, for an edit ops make a few times a year.
            # Freshness is checked here instead, at most once every RECHECK_SECONDS.
            auto_reload=False,
            finalize=_without_direction_controls,
        )
        self._checked_at = time.monotonic()

    def _template(self, name: str) -> Template:
        """The compiled template; an edit to any template file is still picked up, within
        RECHECK_SECONDS (every template compiled so far is compared with its file then)."""
        now = time.monotonic()
        if now - self._checked_at >= RECHECK_SECONDS:
            self._checked_at = now
            cache = self.environment.cache
            if cache is not None and not all(t.is_up_to_date for t in list(cache.values())):
                cache.clear()  # recompiled from the files as they are now, on next use
        return self.environment.get_template(name)

    def kinds(self) -> list[str]:
        return sorted(p.stem for p in self.directory.glob("*.txt") if not p.name.startswith("_"))

    def check(self) -> None:
        """Every message has both files and both parse. (Edits made later are picked up when the
        next message is rendered; a broken edit holds that kind's e-mail, retrying, until fixed.)"""
        kinds = self.kinds()
        if not kinds:
            raise TemplateProblem(f"no templates in {self.directory}")
        for kind in kinds:
            for suffix in ("txt", "html"):
                try:
                    self.environment.get_template(f"{kind}.{suffix}")
                except Exception as error:
                    raise TemplateProblem(f"{kind}.{suffix}: {error}") from error

    def render(self, kind: str, context: Mapping[str, Any]) -> RenderedEmail:
        try:
            text = self._template(f"{kind}.txt").render(context)
        except Exception as error:  # jinja2's TemplateNotFound, UndefinedError, TemplateSyntaxError
            raise TemplateProblem(f"{kind}.txt: {error}") from error
        first, _, body = text.partition("\n")
        if not first.startswith("Subject:"):
            raise TemplateProblem(f"{kind}.txt must start with a 'Subject: ...' line")
        # A subject is one line whatever the context holds (no header injection).
        subject = _NOT_IN_SUBJECT.sub(" ", first.removeprefix("Subject:")).strip()
        try:
            html = self._template(f"{kind}.html").render({**context, "subject": subject})
        except Exception as error:
            raise TemplateProblem(f"{kind}.html: {error}") from error
        return RenderedEmail(subject=subject, text=body.lstrip("\n"), html=html)


@dataclass(frozen=True)
class ComposedEmail:
    """A message ready for SMTP: the envelope and the RFC 5322 bytes (CRLF line ends)."""

    sender: str  # the envelope sender: the bare address of the From header
    recipient: str
    message_id: str
    data: bytes  # as sent: CRLF line ends

    def as_bytes(self) -> bytes:
        """As email.message.Message.as_bytes() gives it: lines ending LF."""
        return self.data.replace(b"\r\n", b"\n")


def compose(rendered: RenderedEmail, *, delivery_id: str, sender: str, recipient: str, sent_at: datetime,
            port_in_request_sid: str) -> ComposedEmail:
    """One message, text first and HTML as its alternative. The Message-ID is the delivery id,
    so a resend after a crash is recognisably the same message.

    Written as bytes here rather than built as an email.message tree and flattened by the stdlib
    generator (then flattened again by aiosmtplib): the tree, its header folding and the
    generator's boundary search were ~30% of the notifier's CPU under the pipeline bench. The
    message is the same multipart/alternative with UTF-8 parts, 7bit where the text allows it and
    quoted-printable otherwise (binascii's encoder, in C). The boundary holds "=_", which quoted-printable output can never contain, so
    no search of the bodies is needed. Headers that are not plain short ASCII fall back to
    email.header's encoding and folding."""
    if _PLAIN_ADDRESS.fullmatch(recipient) is None:  # exactly the one intended recipient, no header injection
        raise UnsendableRecipient(f"not one plain e-mail address: {recipient[:300]!r}")
    for value in (port_in_request_sid, delivery_id):
        if not value.isprintable() or not value.isascii():  # no header injection through an id
            raise ValueError(f"a line break or control character in a header value: {value!r}")
    envelope_sender, from_header, domain = _sender_parts(sender)
    message_id = f"<{delivery_id}@{domain}>"
    boundary = f"=_{secrets.token_hex(12)}"
    head = (f"Content-Type: multipart/alternative; boundary=\"{boundary}\"\r\n"
            "MIME-Version: 1.0\r\n"
            f"{from_header}"
            f"To: {recipient}\r\n"
            f"{_subject_header(rendered.subject)}"
            f"Date: {_date_header(sent_at)}\r\n"
            f"Message-ID: {message_id}\r\n"
            # RFC 3834: an automatic message; auto-responders should not answer it.
            "Auto-Submitted: auto-generated\r\n"
            f"X-Port-In-Request-Sid: {port_in_request_sid}\r\n"
            "\r\n")
    data = b"".join((
        # An internationalised recipient (RFC 6532) goes as UTF-8; smtp.py asks for SMTPUTF8.
        head.encode("ascii" if recipient.isascii() else "utf-8"),
        f"--{boundary}\r\n".encode(), *_part("plain", rendered.text),
        f"\r\n--{boundary}\r\n".encode(), *_part("html", rendered.html),
        f"\r\n--{boundary}--\r\n".encode(),
    ))
    return ComposedEmail(sender=envelope_sender, recipient=recipient, message_id=message_id, data=data)


def _part(subtype: str, text: str) -> tuple[bytes, bytes]:
    """A part's headers and body. ASCII text with lines a server keeps as they are (at most 998
    octets, no trailing blanks, no CR of its own) goes as 7bit, unencoded; anything else as
    quoted-printable. 7bit keeps the template's lines as the lines on the wire, where
    quoted-printable breaks every line over 76 characters in two: each line is a read and a
    parse in the receiving server (aiosmtpd, the local catcher, spends ~4.5 us a line), and
    the generated messages are a third fewer lines."""
    if text.isascii() and _fits_7bit(text):
        return _PART_HEADERS[subtype, "7bit"], text.replace("\n", "\r\n").encode("ascii")
    return _PART_HEADERS[subtype, "quoted-printable"], _quoted_printable(text)


def _fits_7bit(text: str) -> bool:
    """No line over 998 octets, no blank ending a line, no CR or NUL: what 7bit carries unchanged.
    Substring tests rather than one regex: the regex's line-length branch was tried at every
    character (~70 us a part, 5% of the notifier's CPU); these take ~6."""
    return not ("\r" in text or "\0" in text or " \n" in text or "\t\n" in text
                or text.endswith((" ", "\t")) or max(map(len, text.split("\n"))) > 998)
_PART_HEADERS = {
    (subtype, encoding): (f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
                          f"Content-Transfer-Encoding: {encoding}\r\n\r\n").encode()
    for subtype in ("plain", "html") for encoding in ("7bit", "quoted-printable")
}


def _quoted_printable(text: str) -> bytes:
    """Quoted-printable: readable where the text is ASCII, safe for any line length and character.
    Lines end CRLF on the wire. A CRLF in the text is a line end; a lone CR left after that is
    kept, encoded (=0D) on a line of its own between soft breaks: binascii's encoder would pass
    it through (a bare CR in SMTP DATA is forbidden, RFC 5321 2.3.8), and a CR it saw before its
    first line end switched it to CRLF line ends for the whole part. So each run between lone CRs
    is encoded alone; a run before a CR is encoded with a sentinel character after it, dropped
    again, so its last line keeps room for the soft break that follows it."""
    *before_crs, last = text.replace("\r\n", "\n").split("\r")
    encoded = [_b2a_qp(run + "X")[:-1] + b"=\n=0D=\n" for run in before_crs]
    return b"".join((*encoded, _b2a_qp(last))).replace(b"\n", b"\r\n")


def _b2a_qp(text: str) -> bytes:
    return binascii.b2a_qp(text.encode("utf-8"), quotetabs=False, istext=True)


@functools.lru_cache(maxsize=16)
def _sender_parts(sender: str) -> tuple[str, str, str]:
    """The envelope address, the From header line and the Message-ID domain of one configured
    sender: the same for every message, so worked out once (parseaddr was ~4% of the CPU)."""
    name, address = email.utils.parseaddr(sender)
    header = f"From: {email.utils.formataddr((name, address), charset='utf-8')}"
    if len(header) > 78 or "\n" in header:
        header = Header(email.utils.formataddr((name, address), charset="utf-8"), header_name="From").encode(
            linesep="\r\n")
        header = f"From: {header}"
    domain = address.rpartition("@")[2] or "localhost"
    return address, header + "\r\n", domain


def _subject_header(subject: str) -> str:
    # The renderer made the subject one line; short ASCII goes as it is, anything else is
    # encoded (RFC 2047) and folded by email.header, as compat32 did.
    # ASCII holding "=?" (an encoded-word look-alike a reader would decode) or a word too long to
    # fold under 998 octets is encoded too, as UTF-8 encoded-words, which split anywhere.
    if subject.isascii() and len(subject) <= 69 and "=?" not in subject:
        return f"Subject: {subject}\r\n"
    plain = subject.isascii() and "=?" not in subject and all(len(word) <= 900 for word in subject.split(" "))
    charset = "us-ascii" if plain else "utf-8"
    return f"Subject: {Header(subject, charset, header_name='Subject').encode(linesep=chr(13) + chr(10))}\r\n"


_last_date: tuple[datetime | None, str] = (None, "")


def _date_header(sent_at: datetime) -> str:
    # Messages sent within one second share the Date header's text: formatted once.
    global _last_date
    second = sent_at.replace(microsecond=0)
    if _last_date[0] != second:
        _last_date = (second, email.utils.format_datetime(second))
    return _last_date[1]


def load_fix_advice(path: Path = TEMPLATES / "rejection_fixes.yaml") -> FixAdvice:
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise TemplateProblem(f"{path}: {error}") from error
    if not isinstance(document, dict) or not isinstance(document.get("reasons"), dict) or not document.get("default"):
        raise TemplateProblem(f"{path}: needs a `default` sentence and a `reasons` mapping")
    sentences = {str(code).strip().upper(): str(text).strip() for code, text in document["reasons"].items()}
    return FixAdvice(sentences=sentences, default=str(document["default"]).strip())
