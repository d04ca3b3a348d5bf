"""What a migration's SQL does to the transaction it runs in, read the way PostgreSQL's lexer reads it.

A Drizzle migration is split on `--> statement-breakpoint` into chunks, and each chunk is sent as it is (one
simple-protocol query: it may hold several statements). This scanner finds the top-level statements of a chunk,
skipping comments (nested /* */ too), string literals (E'' with backslashes), quoted identifiers, dollar-quoted
bodies ($$, $BODY$) and SQL-standard function bodies (BEGIN ATOMIC ... END), and names the ones that end or start a
transaction (BEGIN, COMMIT, ROLLBACK, ...) or cannot run inside one (CREATE INDEX CONCURRENTLY, VACUUM, ...).
It only plans and explains: the server, not this scanner, decides what a chunk does.

Pure Python, no import beyond the standard library.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# One token of PostgreSQL's lexer that matters here; nested /* */ comments and dollar-quoted bodies are followed
# by hand (they need a depth and a closing tag). An unterminated literal runs to the end, as the server reads it.
_TOKEN = re.compile(
    r"""(?P<line>--[^\n]*)
    | (?P<block>/\*)
    | (?P<estring>[eE]'(?:[^'\\]|\\.|'')*'?)
    | (?P<string>'(?:[^']|'')*'?)
    | (?P<ident>"(?:[^"]|"")*"?)
    | (?P<dollar>\$(?:[A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$)
    | (?P<word>[A-Za-z_\u0080-\uffff][A-Za-z0-9_$\u0080-\uffff]*)
    | (?P<semi>;)""",
    re.VERBOSE,
)
# Chunks without any of these words need no scan: nothing in them ends, starts or refuses a transaction.
_RELEVANT = re.compile(
    r"\b(?:begin|start|commit|end|rollback|abort|prepare|concurrently|vacuum|database|tablespace|subscription"
    r"|system|cluster|reindex)\b",
    re.IGNORECASE,
)
# Leading words of statements that end the transaction they run in, or start one.
ENDS_TRANSACTION = {"COMMIT": "COMMIT", "END": "COMMIT", "ROLLBACK": "ROLLBACK", "ABORT": "ROLLBACK"}


@dataclass(frozen=True)
class Statement:
    """One top-level statement of a chunk: its words (keywords and identifiers, upper-cased, outside literals and
    comments) and its text."""

    words: tuple[str, ...]
    text: str

    def transaction_control(self) -> str | None:
        """COMMIT, ROLLBACK or BEGIN when the statement ends or starts a transaction, else None."""
        if not self.words:
            return None
        first, rest = self.words[0], self.words[1:]
        if first == "ROLLBACK" and rest[:1] in (("TO",), ("PREPARED",)):
            return None  # back to a savepoint (the transaction goes on), or a prepared transaction elsewhere
        if first == "PREPARE" and rest[:1] == ("TRANSACTION",):
            return "COMMIT"  # the transaction leaves the session
        if first in ENDS_TRANSACTION:
            return ENDS_TRANSACTION[first]
        if first == "BEGIN" or (first == "START" and rest[:1] == ("TRANSACTION",)):
            return "BEGIN"
        return None

    def outside_transaction(self) -> str | None:
        """The command's name when PostgreSQL refuses to run it inside a transaction block, else None."""
        words = self.words
        if not words:
            return None
        first, second = words[0], words[1] if len(words) > 1 else ""
        concurrently = "CONCURRENTLY" in words
        if first == "CREATE" and "INDEX" in words[1:3] and concurrently:
            return "CREATE INDEX CONCURRENTLY"
        if first == "DROP" and second == "INDEX" and concurrently:
            return "DROP INDEX CONCURRENTLY"
        if first == "REINDEX" and (concurrently or second in ("DATABASE", "SYSTEM")):
            return f"REINDEX {'CONCURRENTLY' if concurrently else second}"
        if first == "ALTER" and "DETACH" in words and concurrently:
            return "ALTER TABLE ... DETACH PARTITION CONCURRENTLY"
        if first == "VACUUM":
            return "VACUUM"
        if first in ("CREATE", "DROP") and second in ("DATABASE", "TABLESPACE", "SUBSCRIPTION"):
            return f"{first} {second}"
        if first == "ALTER" and second == "SYSTEM":
            return "ALTER SYSTEM"
        if first == "ALTER" and second == "DATABASE" and words[3:5] == ("SET", "TABLESPACE"):
            return "ALTER DATABASE ... SET TABLESPACE"
        if first == "CLUSTER" and len(words) <= 2:
            return "CLUSTER (every table)"
        return None


def _skip_block_comment(sql: str, start: int) -> int:
    """The index after the /* */ comment opening at `start` (they nest); the end of the text when unterminated."""
    depth, i = 0, start
    while i < len(sql):
        pair = sql[i : i + 2]
        if pair == "/*":
            depth, i = depth + 1, i + 2
        elif pair == "*/":
            depth, i = depth - 1, i + 2
            if depth == 0:
                return i
        else:
            i += 1
    return len(sql)


def may_matter(chunk: str) -> bool:
    """Whether the chunk holds a word that could end, start or refuse a transaction (a cheap test before a scan)."""
    return _RELEVANT.search(chunk) is not None


def split_statements(sql: str) -> list[Statement]:
    """The chunk's top-level statements that hold anything but comments and whitespace, in order."""
    statements: list[Statement] = []
    words: list[str] = []
    start = position = atomic_depth = 0
    while (token := _TOKEN.search(sql, position)) is not None:
        kind, position = token.lastgroup, token.end()
        if kind == "block":
            position = _skip_block_comment(sql, token.start())
        elif kind == "dollar":
            close = sql.find(token.group(), position)
            position = len(sql) if close < 0 else close + len(token.group())
        elif kind == "ident":
            words.append(token.group())
        elif kind == "word":
            word = token.group().upper()
            # BEGIN ATOMIC ... END in CREATE FUNCTION/PROCEDURE holds semicolons (psql counts the same way).
            opens = word == "ATOMIC" and words[:1] == ["CREATE"] and words[-1:] == ["BEGIN"]
            if opens or (atomic_depth and word == "CASE"):
                atomic_depth += 1
            elif atomic_depth and word == "END":
                atomic_depth -= 1
            words.append(word)
        elif kind == "semi" and not atomic_depth:
            if words:
                statements.append(Statement(tuple(words), sql[start : token.start()].strip()))
            words, start = [], position
    if words:
        statements.append(Statement(tuple(words), sql[start:].strip()))
    return statements
