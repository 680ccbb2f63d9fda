"""Notices as e-mails: one template per message, in the reader's language (gettext),
headers that cannot be injected.

Pure: the caller supplies the notice, the account, the link and the time.
"""

from __future__ import annotations

import datetime as dt
import email.policy
import functools
import hashlib
import textwrap
from collections.abc import Mapping
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from pathlib import Path

import jinja2
from markupsafe import Markup, escape

from auth import i18n
from auth.config import LANGUAGES, Settings
from auth.errors import InvalidInput
from auth.models import Account, Notice, utcnow
from auth.reset import reasons

KINDS = ("reset_forced", "reset_requested", "new_sign_in")
TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "email"
WIDTH = 72  # plain-text lines; links and addresses are never cut


def _paragraph(text: str) -> str:
    return textwrap.fill(text, WIDTH, break_long_words=False, break_on_hyphens=False)


def _link(url: str) -> Markup:
    return Markup('<a href="{0}" style="color:#0b5cad;">{0}</a>').format(escape(url))


@functools.cache
def _environment(language: str, *, html: bool) -> jinja2.Environment:
    """One environment per language and format, its catalog installed once: notices are
    sent from several threads at once, so nothing is switched per message."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=html,  # noqa: S701 - the text parts are plain text, never parsed as HTML
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=not html,
        trim_blocks=not html,
        extensions=["jinja2.ext.i18n"],
    )
    env.policies["ext.i18n.trimmed"] = True  # as babel.cfg extracts them
    env.install_gettext_translations(i18n.translations(language), newstyle=True)  # type: ignore[attr-defined]
    env.filters.update(paragraph=_paragraph, urlize_one=_link)
    return env


def render(kind: str, *, language: str, context: Mapping[str, object]) -> tuple[str, str, str]:
    """(subject, text, html) in `language`. The text template's first line is
    `Subject: …`, so subject and body come from one place; the HTML gets it as `subject`."""
    if kind not in KINDS or language not in LANGUAGES:
        raise InvalidInput(f"no e-mail template for kind {kind!r} in language {language!r}")
    return render_template(kind, language=language, context={"note": "", **context})


def render_template(
    name: str, *, language: str, context: Mapping[str, object]
) -> tuple[str, str, str]:
    """(subject, text, html) of the templates `name`.txt and `name`.html in `language`."""
    values = {**context, "language": language}
    text = _environment(language, html=False).get_template(f"{name}.txt").render(values)
    first, _, body = text.partition("\n")
    if not first.startswith("Subject: "):
        raise InvalidInput(f"{name}.txt must start with a `Subject: ` line")
    subject = first.removeprefix("Subject: ").strip()
    html = _environment(language, html=True).get_template(f"{name}.html")
    return subject, body.lstrip("\n"), html.render({**values, "subject": subject})


def envelope(
    to: str | Address,
    *,
    subject: str,
    text: str,
    html: str,
    key: str,
    settings: Settings,
    now: dt.datetime,
) -> EmailMessage:
    """An automatic e-mail from MAIL_FROM: its headers, its text and HTML parts. `key`
    makes its Message-ID, the same on every resend."""
    # An address with non-ASCII characters (jérôme@…) can only travel as SMTPUTF8 (RFC 6531):
    # such a message is written in UTF-8, and a server without SMTPUTF8 refuses it for good.
    address = to.addr_spec if isinstance(to, Address) else to
    message = EmailMessage(policy=email.policy.default.clone(utf8=not address.isascii()))
    message["From"] = settings.mail_from
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(now)
    message["Message-ID"] = message_id(key, settings.mail_from)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies, please
    message["X-Auto-Response-Suppress"] = "All"  # the same, for Exchange
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


def message_id(idempotency_key: str, mail_from: str) -> str:
    """The same notice always gets the same Message-ID, so a resend after a crash is visible."""
    digest = hashlib.sha256(b"notice:" + idempotency_key.encode()).hexdigest()[:32]
    domain = parseaddr(mail_from)[1].rpartition("@")[2] or "breachguard.invalid"
    return f"<{digest}@{domain}>"


def build_message(
    notice: Notice,
    account: Account,
    *,
    link: str,
    settings: Settings,
    now: dt.datetime | None = None,
) -> EmailMessage:
    """The notice as an e-mail. Nothing from the person goes into a header but their name and
    address (both encoded by the e-mail library), so no header can be injected."""
    language = account.language if account.language in LANGUAGES else settings.default_language
    why = reasons.sentence(notice.reason_code)
    extra: Mapping[str, object] = {}
    if notice.kind == "new_sign_in":  # when, where, what browser, and "this wasn't me"
        from auth.activity import not_me

        extra = not_me.notice_context(
            notice, account, language=language, settings=settings, now=now or utcnow()
        )
    subject, text, html = render(
        notice.kind,
        language=language,
        context={
            **extra,
            "name": account.name,
            "reason": i18n.translations(language).gettext(why),
            "note": notice.reason,
            "link": link,
            "minutes": settings.reset_token_minutes,
            "hours": settings.reset_forced_token_hours,
            "security_url": f"{settings.public_url}/account/security",
            "forgot_url": f"{settings.public_url}/forgot",
        },
    )
    # By its parts: parsing an addr_spec refuses a non-ASCII local part under any policy.
    local, _, domain = account.email.rpartition("@")
    return envelope(
        Address(" ".join(account.name.split()), username=local, domain=domain),
        subject=subject,
        text=text,
        html=html,
        key=notice.idempotency_key,
        settings=settings,
        now=now or utcnow(),
    )
