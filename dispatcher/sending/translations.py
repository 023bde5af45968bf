"""Translations: a step's templates per locale, chosen by the subscriber's locale.

A step keeps its default templates in ``template`` and any translations in
``config["translations"]``: ``{"de": {"subject": ..., "body": ...}, "pt": {...}}``. For a
subscriber whose locale is ``pt-BR`` the ``pt-BR`` entry is used, else ``pt``, else the default;
a translation that gives only some fields takes the others from the default.

A missing translation never fails a delivery, and neither does a broken one: a translation
that does not render (a field the payload lacks, a sandbox refusal) is dropped and the default
templates are rendered instead, so the worst a translator's mistake costs is the default text.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from dispatcher.sending.rendering import RenderError, TemplateRenderer

#: ``config`` key of a step's translations.
TRANSLATIONS = "translations"


def locale_chain(locale: str | None) -> list[str]:
    """``pt_BR`` / ``pt-br`` -> ``["pt-br", "pt"]``, lower case: the locales tried, in order."""
    if not locale:
        return []
    tag = locale.strip().replace("_", "-").lower()
    chain = [tag]
    language = tag.split("-", 1)[0]
    if language and language != tag:
        chain.append(language)
    return chain


def translation_tag(config: Mapping[str, Any], locale: str | None) -> str | None:
    """The tag (as written in the step) of the translation the locale chain finds first."""
    translations = config.get(TRANSLATIONS)
    if not isinstance(translations, Mapping) or not translations:
        return None
    by_tag = {
        str(tag).replace("_", "-").lower(): str(tag)
        for tag, fields in translations.items()
        if isinstance(fields, Mapping)
    }
    return next((by_tag[tag] for tag in locale_chain(locale) if tag in by_tag), None)


def translation_for(config: Mapping[str, Any], locale: str | None) -> dict[str, str] | None:
    """The translated fields the locale chain finds first, or ``None``."""
    tag = translation_tag(config, locale)
    if tag is None:
        return None
    fields = config[TRANSLATIONS][tag]
    return {str(name): value for name, value in fields.items() if isinstance(value, str)}


def localized_templates(
    template: Mapping[str, str],
    config: Mapping[str, Any],
    locale: str | None,
    fields: Collection[str],
) -> tuple[dict[str, str], dict[str, str]]:
    """(the templates to render for ``locale``, the step's default templates), both limited to
    ``fields``; the first is the default when there is no translation."""
    default = {name: source for name, source in template.items() if name in fields}
    translated = translation_for(config, locale)
    if not translated:
        return default, default
    chosen = {**default, **{name: source for name, source in translated.items() if name in fields}}
    return chosen, default


def render_localized(  # noqa: PLR0917 - the step's parts and the render's
    renderer: TemplateRenderer,
    template: Mapping[str, str],
    config: Mapping[str, Any],
    locale: str | None,
    context: Mapping[str, Any],
    fields: Collection[str],
) -> dict[str, str]:
    """The step's fields rendered in the subscriber's language, or in the default one when the
    translation is missing or does not render. Raises :class:`RenderError` only for the
    default templates."""
    chosen, default = localized_templates(template, config, locale, fields)
    if chosen is not default:
        try:
            return renderer.render_fields(chosen, context)
        except RenderError:
            pass  # the translation's fault: the default text is sent instead
    return renderer.render_fields(default, context)
