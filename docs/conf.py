"""Sphinx configuration of the course website (built by ``docs/build.py``, i.e. ``make site``).

Sphinx reads this file from ``docs/`` but the pages from a source folder that ``docs/build.py``
prepares in the build folder (notebooks without their hidden tests, solutions collapsed, the
course pages and the results). ``docs/build.py`` passes what differs per build (that folder's
paths, fast mode's per-cell timeout) as configuration overrides.

Nothing is loaded from another host: MathJax 3 and the ipywidgets renderer are served from the
site's own ``_static/`` (copied there from ``docs/node_modules`` by ``docs/build.py``), the theme
is in light mode (unset, it logs a console error) and no font or script comes from a CDN.
"""

from __future__ import annotations

import html
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

project = "minis2l"
author = "the minis2l authors"
copyright = "the minis2l authors; code MIT, course text and figures CC BY 4.0"
language = "en"

extensions = ["myst_nb"]
exclude_patterns = ["**.ipynb_checkpoints", "jupyter_execute"]
templates_path = ["_templates"]
suppress_warnings = ["mystnb.unknown_mime_type"]  # widget-view outputs have no fallback text

# MyST: $...$ and $$...$$ math, ::: fences (the answers directive), anchors for ## headings.
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3

# Notebooks run once per change of their code (jupyter-cache; docs/build.py adds a fingerprint of
# the library and the mode to each notebook so that the cache key covers them); any error stops
# the build.
nb_execution_mode = "cache"
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_execution_timeout = 1800  # seconds per cell; docs/build.py passes a shorter one in fast mode
nb_execution_cache_path = ""  # set by docs/build.py: a folder per mode
nb_merge_streams = True

# The widget renderer from the site itself (html-manager's embed.js, no require.js, no CDN);
# myst-nb adds it, after the widget state, to the pages whose notebook saved widget state.
nb_ipywidgets_js = {"vendor/html-manager/embed.js": {}}

# MathJax 3 from the site itself; MathJax 3's startup keeps the config below (myst-parser adds its
# classes), and _static/mathjax-hub-shim.js gives it the MathJax 2 call that ipywidgets makes.
mathjax_path = "vendor/mathjax/tex-chtml.js"
mathjax3_config: dict[str, Any] = {"options": {}}
mathjax_config_path = "_static/mathjax-hub-shim.js"

html_theme = "sphinx_book_theme"
html_title = "minis2l: shuffle to learn"
html_static_path = ["_static"]  # docs/build.py adds the folder of vendored scripts
html_css_files = ["minis2l.css"]
html_context = {"default_mode": "light"}
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "use_download_button": False,
    "use_fullscreen_button": False,
    "home_page_in_toc": True,
}
html_show_sourcelink = False
html_copy_source = False


class AnswersDirective(SphinxDirective):
    """``::::{answers} Show the answers`` ... ``::::``: the content, folded and closed by default.

    The content sits between two raw HTML nodes that open and close a ``<details>`` element (raw
    nodes, unlike a node class defined here, survive Sphinx's pickled doctrees).
    """

    has_content = True
    optional_arguments = 1
    final_argument_whitespace = True

    def run(self) -> list[nodes.Node]:
        """Parse the content into a closed ``<details>`` block whose summary is the argument."""
        summary = html.escape(self.arguments[0] if self.arguments else "Show")
        body = nodes.container(classes=["minis2l-answers-body"])
        self.state.nested_parse(self.content, self.content_offset, body)
        opening = f'<details class="minis2l-answers"><summary>{summary}</summary>'
        return [
            nodes.raw("", opening, format="html"),
            body,
            nodes.raw("", "</details>", format="html"),
        ]


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the ``answers`` directive (the instructor guide folds each answer section)."""
    app.add_directive("answers", AnswersDirective)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
