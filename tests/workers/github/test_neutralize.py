"""Model-written text made safe to post: mentions of strangers broken, links elsewhere defanged."""

from __future__ import annotations

from workers.github.neutralize import ZWJ, github_host, neutralize

PEOPLE = {"alice", "Bob"}


def safe(text: str) -> str:
    return neutralize(text, PEOPLE, "github.com")


def test_only_people_on_the_pull_request_are_mentioned():
    assert safe("thanks @alice and @BOB") == "thanks @alice and @BOB"
    assert safe("cc @mallory, @octo/security") == f"cc @{ZWJ}mallory, @{ZWJ}octo/security"
    assert safe("(@mallory)") == f"(@{ZWJ}mallory)"
    assert safe("mail me at me@mallory.example") == "mail me at me@mallory.example"  # not a mention


def test_links_and_images_to_other_hosts_keep_their_text_only():
    assert safe("see [the fix](https://evil.example/x?d=1)") == "see the fix (link to evil[.]example removed)"
    assert safe("![](https://evil.example/p.png?r=octo/app)") == "(image from evil[.]example removed)"
    assert safe("[x](//evil.example/a)") == "x (link to evil[.]example removed)"
    assert safe("<https://evil.example/a>") == "hxxps://evil[.]example/a"
    assert safe("go to https://evil.example/a or www.evil.example now") == (
        "go to hxxps://evil[.]example/a or www[.]evil[.]example now")
    assert safe('<img src="https://evil.example/i.png">') == '&lt;img src="hxxps://evil[.]example/i.png">'
    assert safe("[1]: https://evil.example") == "[1]: hxxps://evil[.]example"


def test_links_to_this_github_and_relative_ones_stay():
    text = "see [#7](https://github.com/octo/app/pull/7), [line](#L3) and https://github.com/octo/app"
    assert safe(text) == text
    assert neutralize("[x](https://ghe.corp/o/r)", (), "ghe.corp") == "[x](https://ghe.corp/o/r)"


def test_code_is_left_as_written():
    text = "use `@pytest.fixture` or\n```python\n@decorator\n# https://evil.example\n```\nthen @mallory"
    assert safe(text) == text.replace("then @mallory", f"then @{ZWJ}mallory")


def test_the_github_host_of_the_api():
    assert github_host("https://api.github.com") == "github.com"
    assert github_host("https://ghe.corp/api/v3") == "ghe.corp"
