# ruff: noqa: E501 - the template loop is kept line for line as it was
"""The versions part of a model page, built as a string, is the HTML the page template made of
it with a Jinja loop: the same bytes for every kind of version, hostile text included."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from registry.catalog.records import CatalogModel
from registry.catalog.site import _environment, render_model_page
from registry.catalog.versionlist import metric_text, versions_html

# the template's loop as it was before the versions part was built as a string
TEMPLATE_LOOP = """\
<ol class="version-list">
{% for v in m.versions %}<li><a class="version-link" href="#v{{ v.version }}">{{ v.version }}</a> <span class="muted">{{ v.date | day }}</span> <span class="badge state-{{ v.state }}">{{ v.state }}</span></li>
{% endfor %}
</ol>
{% for v in m.versions %}
{% set ver, state = v.version, v.state %}
<section class="version" id="v{{ ver }}" aria-labelledby="h-v{{ ver }}">
<h3 id="h-v{{ ver }}"><a href="#v{{ ver }}">{{ ver }}</a> <span class="muted">{{ v.date | day }}</span> <span class="badge state-{{ state }}">{{ state }}</span></h3>
{% if v.withdrawn_by %}<p class="warning" role="note">Withdrawn ({{ v.withdrawn_by }}).</p>{% endif %}
<details{% if loop.first %} open{% endif %}>
<summary>Release notes, commands{% if v.packages %}, packages{% endif %}</summary>
<div class="notes">{{ v.notes | md(3) if v.notes else "No release notes." }}</div>
{% if v.metrics %}<p class="muted">Metrics: {{ v.metrics | map("metric") | join("; ") }}</p>{% endif %}
{% for cmd in v.commands %}<div class="command"><pre><code>{{ cmd }}</code></pre></div>{% endfor %}
{% for p in v.packages %}<div class="command"><pre><code>{{ p.pull }}</code></pre></div>{% endfor %}
</details>
</section>
{% endfor %}
"""


def reference(model: CatalogModel) -> str:
    env = _environment().overlay()
    env.filters["metric"] = metric_text
    return env.from_string(TEMPLATE_LOOP).render(m=model)


def version(number: str, **fields) -> dict:
    return {
        "version": number,
        "tag": f"m@v{number}",
        "commit": "0" * 40,
        "date": datetime(2026, 3, 1, 10, tzinfo=timezone.utc),
        "state": "release",
        "commands": [f"registry pull m@{number} --repo https://example.org/r.git"],
        **fields,
    }


HOSTILE = "<script>alert(1)</script> [x](javascript:alert(1)) \"quoted\" & 'single'"
VERSIONS = [
    version(
        "2.0.0-rc.1",
        state="pre-release",
        notes="## Notes\n\n| metric | value |\n| --- | ---: |\n| acc | 0.9 |\n\n- `size`: 1 → 2\n",
        metrics=[
            {"name": "accuracy", "dataset": "eval", "value": 0.91234},
            {"name": "latency", "dataset": "dev<1>", "value": 3.5, "unit": "ms"},
        ],
        packages=[
            {
                "target": "linux-x86_64",
                "file": "p.tar",
                "size": 10,
                "sha256": "a" * 64,
                "pull": "registry pull m@2.0.0-rc.1 --target linux-x86_64 --repo r & x",
            }
        ],
    ),
    version("1.1.0", state="withdrawn", withdrawn_by="m@v1.1.0-withdrawn <b>", notes=HOSTILE),
    version("1.0.0", state="latest", notes="", metrics=[], commands=[]),
]


@pytest.mark.parametrize("versions", [VERSIONS, VERSIONS[1:2], []], ids=["mixed", "one", "none"])
def test_the_versions_part_is_what_the_template_loop_made(versions):
    model = CatalogModel.model_validate(
        {"name": "m", "state": "published", "withdrawn": False, "versions": versions}
    )
    assert str(versions_html(model)) == reference(model)


def test_hostile_release_notes_stay_text_on_the_page():
    model = CatalogModel.model_validate(
        {"name": "m", "state": "published", "withdrawn": False, "versions": VERSIONS}
    )
    html = render_model_page(model)
    assert "<script>alert" not in html
    assert 'href="javascript:' not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Withdrawn (m@v1.1.0-withdrawn &lt;b&gt;)." in html
