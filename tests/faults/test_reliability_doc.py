"""docs/reliability.md carries the fault matrix exactly as tests/faults/matrix.py defines it, and every case
names a test that exists and asserts the case's message."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO
from faults.matrix import MATRIX, TABLE_END, TABLE_START, render_table

ISSUE_CASES = {
    "db-stops-during-backup",
    "db-stops-during-migrate",
    "db-stops-during-normalize",
    "db-stops-during-restore",
    "backup-disk-full",
    "backup-corrupted",
    *(f"killed-in-{phase}" for phase in ("backup", "migrate", "normalize", "deploy", "smoke")),
    "two-releases",
    "rollback-during-release",
    "dokploy-401",
    "dokploy-500",
    "dokploy-timeout",
    "dokploy-lost-job",
    "app-never-healthy",
    "malformed-database-url",
    "pooler-url",
    "missing-vault-variable",
    "unknown-environment",
    "unknown-backup-id",
    "unknown-phase",
    "unknown-from-phase",
}


def _documented_table() -> str:
    text = (REPO / "docs" / "reliability.md").read_text()
    start, end = text.index(TABLE_START), text.index(TABLE_END) + len(TABLE_END)
    return text[start:end]


def test_the_document_shows_the_matrix_as_defined() -> None:
    assert _documented_table() == render_table(), "regenerate with: .venv/bin/python tests/faults/matrix.py"


def test_every_case_the_issue_lists_is_in_the_matrix_once() -> None:
    cases = [f.case for f in MATRIX]
    assert len(cases) == len(set(cases))
    assert set(cases) >= ISSUE_CASES, sorted(ISSUE_CASES - set(cases))


def _test_functions(path: Path) -> dict[str, str]:
    """Each test function's source with its decorators (where parametrize spells the cases out)."""
    lines = path.read_text().splitlines()
    functions = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            functions[node.name] = "\n".join(lines[first - 1 : node.end_lineno])
    return functions


def test_every_case_names_a_test_that_asserts_its_message() -> None:
    for f in MATRIX:
        path, _, node = f.test.partition("::")
        name, _, param = node.partition("[")
        functions = _test_functions(REPO / path)
        assert name in functions, f"{f.case}: {f.test} does not exist"
        source = functions[name]
        if param:
            assert f'"{param.rstrip("]")}"' in source, f"{f.case}: {f.test} has no case {param.rstrip(']')!r}"
        # Either the test asserts the message through the matrix (naming its case), or spells the message out.
        names_case = f'"{f.case}"' in source or ('f"killed-in-{phase}"' in source and f.case.startswith("killed-in-"))
        assert f.message in source or ("_matches(" in source and names_case), (
            f"{f.case}: {f.test} does not assert {f.message!r}"
        )
