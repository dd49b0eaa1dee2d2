"""Raw ESP syntax an author may type straight into the HTML (code fields, templates).

The renderer turns the tokens it writes itself into markers; this pattern finds the ones an author
wrote by hand so they get the same protection. It covers the delimited forms of the presets in
docs/domain.md. Forms without delimiters (Velocity `#if(...)`, Campaign Monitor `[firstname]`) cannot
be told apart from ordinary text by pattern and are left as text.
"""

from __future__ import annotations

import re

__all__ = ["ESP_SYNTAX_RE"]

ESP_SYNTAX_RE = re.compile(
    r"""
      \{\{\{ (?:(?!\{\{|\}\}\}).)*? \}\}\}   # Handlebars triple-stash {{{ raw }}}
    | \{\{ (?:(?!\{\{|\}\}).)* \}\}          # Liquid / Handlebars / HubL / Mailjet / Marketo output
    | \{% (?:(?!\{%|%\}).)* %\}              # Liquid / HubL tags, Marketo {%= %}
    | \*\| [^|\n]+? \|\*                     # Mailchimp merge tags *|FNAME|*, *|IF:X=y|*
    | %%\[ .*? \]%%                          # AMPscript block %%[ ... ]%%
    | %%= .*? =%%                            # AMPscript inline %%= ... =%%
    | %%[A-Za-z_][\w-]*%%                    # Salesforce MC personalization strings %%FirstName%%
    """,
    re.DOTALL | re.VERBOSE,
)
