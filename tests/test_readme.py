"""The README's quickstart and CI stay in sync."""

import os
import re

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _read(path):
  with open(os.path.join(REPO, path)) as f:
    return f.read()


def test_ci_runs_the_readme_test_command():
  blocks = re.findall(r"```bash\n(.*?)\n```", _read("README.md"), re.S)
  test_cmd = blocks[1].strip()
  assert "pytest" in test_cmd
  assert test_cmd in _read(".ci/run").splitlines()


def test_quickstart_config_exists():
  main_cmd = re.findall(r"```bash\n(.*?)\n```", _read("README.md"), re.S)[0]
  config = re.search(r"--config (\S+)", main_cmd).group(1)
  assert os.path.exists(os.path.join(REPO, config))
