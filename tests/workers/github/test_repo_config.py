"""`.github/qwen.yml`: what a maintainer sees when the file is right, missing or wrong."""

from __future__ import annotations

import pytest

from workers.github.repo_config import RepoConfig, describe, load_repo_config

FULL = """\
# qwenfix settings
repair:
  mode: commit
  command: |
    pytest -q tests/unit
  regression_command: pytest -q
  setup: pip install -e .[test]
  candidates: 4
  max_attempts_per_day: 5
  allow_ci_changes: true
  allow_test_deletion: false
  allow_test_changes: true
  branches: [main, "release/*", "feature/**"]
  exclude_branches: ["release/legacy-*"]
  rerun_flaky: true
sandbox:
  image: ghcr.io/acme/ci-sandbox:3.12
  network: true
paths:
  ignore: ["migrations/**", "vendor/*"]
model:
  temperature: 0.2
  max_steps: 40
  max_tokens: 4096
"""


def test_missing_or_empty_file_gives_defaults_without_error():
    for text in (None, "", "   \n", "# only a comment\n"):
        config, error = load_repo_config(text)
        assert error is None
        assert config == RepoConfig()
    config, _ = load_repo_config(None)
    assert config.repair.candidates == 2
    assert config.repair.max_attempts_per_day == 3
    assert config.repair.branches == ["*"]
    assert config.repair.exclude_branches == []
    assert config.repair.allow_ci_changes is False
    assert config.repair.allow_test_deletion is False
    assert config.repair.allow_test_changes is False
    assert config.repair.rerun_flaky is False
    assert config.repair.command is None and config.repair.regression_command is None
    assert config.sandbox.image is None and config.sandbox.network is False
    assert config.paths.ignore == []
    assert config.model.temperature is None


def test_every_key_is_read():
    config, error = load_repo_config(FULL)
    assert error is None
    r = config.repair
    assert r.mode == "commit"
    assert r.command == "pytest -q tests/unit\n"
    assert r.regression_command == "pytest -q"
    assert r.setup == "pip install -e .[test]"
    assert (r.candidates, r.max_attempts_per_day) == (4, 5)
    assert r.allow_ci_changes is True and r.allow_test_deletion is False and r.rerun_flaky
    assert r.allow_test_changes is True
    assert config.sandbox.image == "ghcr.io/acme/ci-sandbox:3.12"
    assert config.paths.ignore == ["migrations/**", "vendor/*"]
    assert (config.model.temperature, config.model.max_steps, config.model.max_tokens) == (
        0.2, 40, 4096)


def test_sections_left_empty_use_defaults():
    config, error = load_repo_config("repair:\nsandbox:\n")
    assert error is None
    assert config == RepoConfig()


def test_invalid_candidates_names_the_field_and_defaults_apply():
    config, error = load_repo_config("repair:\n  candidates: 9\n  mode: commit\n")
    assert error == "repair.candidates: Input should be less than or equal to 8"
    assert config.repair.candidates == 2
    assert config.repair.mode is None  # the whole file is ignored, not half of it


def test_wrong_types_are_errors_not_coerced():
    _, error = load_repo_config("repair:\n  allow_ci_changes: 'yes please'\n")
    assert error and error.startswith("repair.allow_ci_changes:")
    _, error = load_repo_config("repair:\n  candidates: '3'\n")
    assert error and error.startswith("repair.candidates:")
    _, error = load_repo_config("repair:\n  branches: [main, 7]\n")
    assert error and error.startswith("repair.branches[1]:")


def test_unknown_mode_lists_the_choices():
    _, error = load_repo_config("repair:\n  mode: push_to_main\n")
    assert error.startswith("repair.mode:")
    for mode in ("suggest", "commit", "pull_request", "comment"):
        assert mode in error


def test_unknown_top_level_key_is_named():
    config, error = load_repo_config("repair:\n  candidates: 3\nrepiar:\n  mode: commit\n")
    assert error is not None and error.startswith("repiar: unknown key")
    assert "repair, sandbox, paths, review, model" in error
    assert config == RepoConfig()


def test_unknown_key_in_a_section_is_named():
    _, error = load_repo_config("sandbox:\n  memory: 4g\n")
    assert error.startswith("sandbox.memory: unknown key (allowed: image, network)")


@pytest.mark.parametrize("key", ["base_url", "api_key", "endpoint", "name", "organization"])
def test_model_endpoint_and_credentials_are_refused(key):
    config, error = load_repo_config(f"model:\n  {key}: https://evil.example/v1\n")
    assert error.startswith(f"model.{key}: not allowed here")
    assert "operator" in error
    assert config.model == RepoConfig().model


def test_model_overrides_are_bounded():
    _, error = load_repo_config("model:\n  temperature: 5\n")
    assert error == "model.temperature: Input should be less than or equal to 2"
    _, error = load_repo_config("model:\n  max_steps: 0\n")
    assert error.startswith("model.max_steps:")


def test_several_errors_are_all_reported():
    _, error = load_repo_config("repair:\n  candidates: 0\nsandbox:\n  network: maybe\nx: 1\n")
    assert "repair.candidates:" in error and "sandbox.network:" in error and "x: unknown" in error


def test_yaml_syntax_error_gives_the_line():
    config, error = load_repo_config("repair:\n  mode: commit\n  candidates: [1, 2\n")
    assert config == RepoConfig()
    assert error.startswith(".github/qwen.yml is not valid YAML: line ")
    _, error = load_repo_config("repair:\n\tmode: commit\n")
    assert "line 2" in error


def test_duplicate_keys_are_reported_with_their_line():
    _, error = load_repo_config("repair:\n  candidates: 2\n  candidates: 5\n")
    assert "line 3" in error and "duplicate key 'candidates'" in error


def test_a_file_that_is_not_a_mapping():
    config, error = load_repo_config("- repair\n- sandbox\n")
    assert config == RepoConfig()
    assert "must be a mapping" in error


def test_blank_command_is_an_error():
    _, error = load_repo_config("repair:\n  command: '  '\n")
    assert error.startswith("repair.command: must not be empty")


def test_effective_mode():
    default, _ = load_repo_config(None)
    assert default.effective_mode(on_default_branch=False) == "suggest"
    assert default.effective_mode(on_default_branch=True) == "pull_request"
    config, _ = load_repo_config("repair:\n  mode: comment\n")
    assert config.effective_mode(on_default_branch=True) == "comment"
    assert config.effective_mode(on_default_branch=False) == "comment"


def test_branch_patterns_and_exclusions():
    config, _ = load_repo_config(FULL)
    assert config.branch_allowed("main")
    assert config.branch_allowed("refs/heads/main")
    assert config.branch_allowed("release/2.1")
    assert config.branch_allowed("feature/ui/button")
    assert not config.branch_allowed("release/legacy-1.0")
    assert not config.branch_allowed("dependabot/pip/requests-2.32")
    assert not config.branch_allowed("Main")  # case-sensitive, like git

    default, _ = load_repo_config(None)
    assert default.branch_allowed("dependabot/npm_and_yarn/lodash-4.17.21")
    assert not default.branch_allowed("")


def test_single_branch_string_is_a_list():
    config, error = load_repo_config("repair:\n  branches: main\n  exclude_branches: gh-pages\n")
    assert error is None
    assert config.repair.branches == ["main"]
    assert config.branch_allowed("main") and not config.branch_allowed("dev")


def test_setup_network_needs_the_operator_too():
    config, _ = load_repo_config("sandbox:\n  network: true\n")
    assert config.setup_network(operator_allows=True) is True
    assert config.setup_network(operator_allows=False) is False
    default, _ = load_repo_config(None)
    assert default.setup_network(operator_allows=True) is False


def test_describe_shows_effective_values_as_a_markdown_table():
    config, _ = load_repo_config(
        "repair:\n  command: |\n    npm ci\n    npm test | tee out.txt\n  candidates: 3\n")
    table = describe(config)
    lines = table.strip().splitlines()
    assert lines[0] == "| key | value | source |"
    assert lines[1] == "| --- | --- | --- |"
    keys = [f"{section}.{name}" for section, model in RepoConfig.model_fields.items()
            for name in model.annotation.model_fields]
    assert [line.split("`")[1] for line in lines[2:]] == keys  # every key has a row, in order
    rows = {line.split(" | ")[0].strip("| `"): line for line in lines[2:]}
    keys = {f"{section}.{key}" for section, model in RepoConfig.model_fields.items()
            for key in model.annotation.model_fields}
    assert len(keys) >= 21 and set(rows) == keys and len(lines) == 2 + len(keys)  # every key has one row
    assert "`3`" in rows["repair.candidates"] and ".github/qwen.yml" in rows["repair.candidates"]
    assert "suggest on pull requests, pull_request on the default branch" in rows["repair.mode"]
    assert rows["repair.mode"].endswith("| default |")
    # the pipe inside the command must not break the table
    assert "npm ci; npm test \\| tee out.txt" in rows["repair.command"]
    assert rows["repair.command"].count(" | ") == 2
    assert "`false`" in rows["sandbox.network"]
    assert "`false`" in rows["repair.forks"] and rows["repair.forks"].endswith("| default |")


def test_forks_are_not_repaired_unless_the_base_branch_says_so():
    assert load_repo_config(None)[0].repair.forks is False
    config, error = load_repo_config("repair:\n  forks: true\n")
    assert error is None and config.repair.forks is True
    _, error = load_repo_config("repair:\n  forks: sure\n")
    assert error and error.startswith("repair.forks:")
