"""Parsing `/qwen …` out of comment bodies."""

from app.commands import parse_command


def test_fix_with_instructions_on_the_same_and_following_lines():
    command = parse_command("Thanks!\n/qwen fix keep the public API\nand add a test")
    assert command.name == "fix"
    assert command.text == "keep the public API\nand add a test"


def test_each_known_command():
    for name in ("fix", "explain", "help", "stop", "retry"):
        assert parse_command(f"/qwen {name}").name == name


def test_bare_qwen_and_unknown_commands_are_help():
    assert parse_command("/qwen").name == "help"
    command = parse_command("/qwen deploy production")
    assert command.name == "help" and command.unknown == "deploy"


def test_commands_in_quotes_or_code_blocks_do_not_count():
    assert parse_command("> /qwen fix\nquoting someone") is None
    assert parse_command("```\n/qwen fix\n```") is None
    assert parse_command("use `/qwen fix` to ask for a fix") is None


def test_no_command_and_non_text_bodies():
    assert parse_command("LGTM") is None
    assert parse_command(None) is None
    assert parse_command(123) is None  # type: ignore[arg-type]


def test_command_must_start_the_line():
    assert parse_command("please /qwen fix") is None
    assert parse_command("  /qwen FIX now").name == "fix"
