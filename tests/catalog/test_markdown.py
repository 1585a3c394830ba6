"""The catalog's Markdown: what card text and release notes look like on a page, and what they
never become."""

from __future__ import annotations

from registry.catalog.markdown import plain_summary, render_markdown


def test_raw_html_is_shown_as_text():
    html = render_markdown('<script>alert("x")</script>\n\n<img src=x onerror=alert(1)>')
    assert "<script" not in html and "<img" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_only_web_and_mail_links_become_links():
    html = render_markdown(
        "[docs](https://example.org/a?b=1&c=2) [mail](mailto:team@example.org) "
        "[bad](javascript:alert(1)) [also bad](data:text/html,hi) [rel](../x)"
    )
    assert (
        '<a href="https://example.org/a?b=1&amp;c=2" rel="nofollow noopener noreferrer">docs</a>'
        in html
    )
    assert '<a href="mailto:team@example.org"' in html
    assert html.count("<a ") == 2
    assert "[bad](javascript:alert(1))" in html and "[also bad](data:text/html,hi)" in html
    assert '"><script>' not in render_markdown('[x](https://a.org/"><script>)')


def test_release_notes_render_with_headings_tables_lists_and_emphasis():
    notes = (
        "## digits v1.1.0 (2026-02-01)\n\nChanges since v1.0.0. **⚠ 1 metric regression.**\n\n### "
        "Metrics\n\n"
        "| metric | dataset | v1.0.0 | v1.1.0 | change |\n| --- | --- | ---: | ---: | --- |\n"
        "| accuracy ↑ | digits-test | 0.93 | 0.91 | **⚠ regression** -0.02 (-2.2%) |\n\n"
        "### Card changes\n\n- `size`: 1,000 → 1,100\n- `description`: (none) → *new*\n"
    )
    html = render_markdown(notes, heading_offset=2)
    assert "<h4>digits v1.1.0 (2026-02-01)</h4>" in html and "<h5>Metrics</h5>" in html
    assert "<strong>⚠ 1 metric regression.</strong>" in html
    assert '<th class="right">v1.0.0</th>' in html and '<td class="right">0.91</td>' in html
    assert "<td><strong>⚠ regression</strong> -0.02 (-2.2%)</td>" in html
    assert (
        "<ul><li><code>size</code>: 1,000 → 1,100</li><li><code>description</code>: (none) → "
        "<em>new</em></li></ul>" in html
    )


def test_code_is_literal():
    html = render_markdown(
        "Use `registry pull a@1.0.0 && echo <ok>`\n\n```\n<b>not bold</b> **nor this**\n```"
    )
    assert "<code>registry pull a@1.0.0 &amp;&amp; echo &lt;ok&gt;</code>" in html
    assert "<pre><code>&lt;b&gt;not bold&lt;/b&gt; **nor this**</code></pre>" in html


def test_summary_is_the_first_paragraph_in_plain_text():
    assert plain_summary("A **fast** [model](https://x.org).\n\nMore text.") == "A fast model."
    assert len(plain_summary("word " * 200)) == 200
    assert plain_summary(None) == ""
